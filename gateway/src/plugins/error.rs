//! Typed errors at the plugin ABI seam, by kind: a plugin that refused (its own words, for
//! the operator), one that panicked, one that broke the ABI, a vtable that failed its checks,
//! a name no plugin has. Callers match on kinds instead of parsing text; the texts (their
//! `Display`) are the operator-facing wording and stay what the messages always said.
//!
//! Invariants: a [`CallError`] from an instance call (`create`, `start`, `stop`) is scrubbed
//! of that instance's secrets before it leaves `ffi` ([`CallError::scrubbed`]); one from
//! `validate` is scrubbed by the catalog, which knows the options it validated. A
//! [`HandshakeError`] carries nothing from a configuration, so nothing in it is secret.

use std::fmt;

use camgate_plugin_api::abi::{self, ABI_VERSION, ABI_VERSION_V1};

use crate::redact::Redactor;

/// How a plugin function said it failed (its status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An ordinary failure: the plugin could not do it (a camera it cannot reach at once, a
    /// resource it lacks). Its message is the whole story.
    Refused,
    /// The plugin found its configuration invalid (`validate`, `create`).
    InvalidConfig,
    /// The plugin panicked; its export layer caught the panic at the boundary.
    Panicked,
    /// The plugin found the host's ABI unacceptable.
    AbiMismatch,
}

/// A plugin function returned a failure status, with what the plugin wrote about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// What kind of failure the status code says.
    pub kind: FailureKind,
    /// What the plugin wrote to the error sink ("no details given" when nothing).
    pub message: String,
}

impl CallError {
    /// The error for a non-OK `status` with the text the plugin wrote.
    pub(super) fn from_status(status: i32, message: String) -> Self {
        let kind = match status {
            abi::STATUS_PANIC => FailureKind::Panicked,
            abi::STATUS_ABI_MISMATCH => FailureKind::AbiMismatch,
            abi::STATUS_INVALID_CONFIG => FailureKind::InvalidConfig,
            _ => FailureKind::Refused,
        };
        let message = if message.is_empty() {
            "no details given".to_owned()
        } else {
            message
        };
        CallError { kind, message }
    }

    /// The same error with `redactor`'s secrets masked in the plugin's text (a plugin may
    /// echo its configuration, password included).
    pub(super) fn scrubbed(self, redactor: &Redactor) -> Self {
        CallError {
            message: redactor.scrub(&self.message),
            ..self
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FailureKind::Refused | FailureKind::InvalidConfig => f.write_str(&self.message),
            FailureKind::Panicked => write!(f, "plugin panicked: {}", self.message),
            FailureKind::AbiMismatch => write!(f, "ABI mismatch: {}", self.message),
        }
    }
}

impl std::error::Error for CallError {}

/// Why a plugin's handshake failed. Nothing of the plugin is used after one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The handshake was asked at a version this host has no vtable layout for.
    #[error("ABI v{0} is not one this host speaks (v{ABI_VERSION}, v{ABI_VERSION_V1})")]
    UnsupportedVersion(u32),
    /// The plugin's entry function returned a failure.
    #[error(transparent)]
    Entry(CallError),
    /// The vtable the plugin wrote is shorter than the version's (0: not written at all).
    #[error(
        "plugin vtable is {size} bytes, ABI v{version} needs {needed}{}",
        if *size == 0 { " (the entry returned OK without filling it in)" } else { "" }
    )]
    VtableTooSmall {
        /// The size the plugin reported.
        size: usize,
        /// The version's vtable size.
        needed: usize,
        /// The version asked.
        version: u32,
    },
    /// The plugin claims more bytes than the buffer it was given.
    #[error("plugin claims a {size}-byte vtable in a {buffer}-byte buffer")]
    VtableTooLarge {
        /// The size the plugin reported.
        size: usize,
        /// The buffer's size.
        buffer: usize,
    },
    /// The vtable names another version than the one the handshake was at.
    #[error("plugin reports ABI v{reported} in its vtable, but the handshake was at v{asked}")]
    VersionMismatch {
        /// The version in the vtable.
        reported: u32,
        /// The version asked.
        asked: u32,
    },
    /// A function pointer the host calls is null.
    #[error("plugin vtable has no `{0}` function")]
    MissingFunction(&'static str),
    /// The plugin's name is not one manifests can name.
    #[error("plugin name {0:?} is invalid (use lowercase letters, digits, '-' and '_')")]
    InvalidName(String),
}

/// A manifest or request names a plugin the gateway does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plugin `{name}` (available: {})", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
pub struct UnknownPlugin {
    /// The name asked for.
    pub name: String,
    /// Every plugin the gateway has, sorted.
    pub known: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_code_picks_the_kind_and_the_text_keeps_its_wording() {
        let panicked = CallError::from_status(abi::STATUS_PANIC, "boom".into());
        assert_eq!(panicked.kind, FailureKind::Panicked);
        assert_eq!(panicked.to_string(), "plugin panicked: boom");
        let mismatch = CallError::from_status(abi::STATUS_ABI_MISMATCH, String::new());
        assert_eq!(mismatch.kind, FailureKind::AbiMismatch);
        assert_eq!(mismatch.to_string(), "ABI mismatch: no details given");
        let invalid = CallError::from_status(abi::STATUS_INVALID_CONFIG, "bad fps".into());
        assert_eq!(invalid.kind, FailureKind::InvalidConfig);
        assert_eq!(invalid.to_string(), "bad fps");
        // A code this host does not know is an ordinary failure, not a crash.
        let refused = CallError::from_status(77, "camera busy".into());
        assert_eq!(refused.kind, FailureKind::Refused);
        assert_eq!(refused.to_string(), "camera busy");
    }

    #[test]
    fn scrubbing_masks_the_secret_and_keeps_the_kind() {
        let options = serde_json::json!({"url": "rtsp://cam/x", "password": "s3cret-pw"});
        let redactor = Redactor::from_options(options.as_object().unwrap());
        let leaky = CallError::from_status(
            abi::STATUS_PANIC,
            "cannot log in with s3cret-pw to rtsp://admin:s3cret-pw@cam/x".into(),
        );
        let scrubbed = leaky.scrubbed(&redactor);
        assert_eq!(scrubbed.kind, FailureKind::Panicked);
        assert!(!scrubbed.to_string().contains("s3cret"), "{scrubbed}");
        assert!(
            scrubbed
                .to_string()
                .starts_with("plugin panicked: cannot log in")
        );
    }

    #[test]
    fn an_unknown_plugin_lists_the_known_ones() {
        let none = UnknownPlugin {
            name: "onvif".into(),
            known: vec![],
        };
        assert_eq!(none.to_string(), "unknown plugin `onvif` (available: none)");
        let some = UnknownPlugin {
            name: "onvif".into(),
            known: vec!["rtsp".into(), "testsrc".into()],
        };
        assert_eq!(
            some.to_string(),
            "unknown plugin `onvif` (available: rtsp, testsrc)"
        );
    }
}
