//! A stream's `health_rules:` mapping: the thresholds its picture health is judged by.
//! (Not `health`: that is the verdict the API reports next to the manifest's fields.)
//!
//! Every key is optional and falls back to [`HealthRules::DEFAULT`]; unknown keys, wrong
//! types and values out of range are errors with positions, like the rest of the
//! manifest. Durations must be positive: a zero `frozen_after` would call every picture
//! frozen the moment two samples matched. (To stop judging a stream, `enabled: false`.)

use super::node::{Node, Value};
use super::parse::Ctx;
use crate::hub::HealthRules;

/// The keys of `health_rules:`.
pub(crate) const HEALTH_KEYS: &[&str] = &[
    "enabled",
    "frozen_after",
    "dark_after",
    "dark_luma",
    "late_after",
    "min_fps_ratio",
];

impl Ctx<'_> {
    /// Reads `health_rules:`; invalid keys are reported and keep their default.
    pub(super) fn health_rules(&mut self, node: &Node) -> HealthRules {
        let mut rules = HealthRules::DEFAULT;
        let Some(entries) = self.mapping(node, "`health_rules`") else {
            return rules;
        };
        for (key, _, value) in self.keys(entries, "in `health_rules`", HEALTH_KEYS) {
            match key {
                "enabled" => {
                    if let Some(enabled) = self.boolean(value, "enabled") {
                        rules.enabled = enabled;
                    }
                }
                "frozen_after" | "dark_after" | "late_after" => {
                    let Some((duration, _)) = self.duration(value, key) else {
                        continue;
                    };
                    if duration.is_zero() {
                        self.error(
                            value,
                            format!("`{key}` must be longer than 0s (use `enabled: false` to stop judging this stream)"),
                        );
                        continue;
                    }
                    match key {
                        "frozen_after" => rules.frozen_after = duration,
                        "dark_after" => rules.dark_after = duration,
                        _ => rules.late_after = duration,
                    }
                }
                "dark_luma" => {
                    if let Some(luma) = self.number_in(value, key, 0.0, 255.0) {
                        rules.dark_luma = luma;
                    }
                }
                "min_fps_ratio" => {
                    if let Some(ratio) = self.number_in(value, key, 0.0, 1.0) {
                        rules.min_fps_ratio = ratio;
                    }
                }
                _ => unreachable!("keys() only yields allowed keys"),
            }
        }
        rules
    }

    /// A number in `min..=max` (an integer or a float), or an error naming the range.
    fn number_in(&mut self, node: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
        let number = match node.value {
            Value::Int(n) => n as f64,
            Value::UInt(n) => n as f64,
            Value::Float(f) => f,
            ref other => {
                self.error(
                    node,
                    format!(
                        "`{what}` must be a number from {min} to {max}, found {}",
                        other.kind()
                    ),
                );
                return None;
            }
        };
        self.within(node, what, number, min, max)
    }
}
