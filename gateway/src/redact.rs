//! Credential masking: the one place that decides how secrets are hidden.
//!
//! Every URL the gateway shows (API, logs, state messages, errors) goes through
//! [`mask_url_credentials`]; every text a plugin sends the host goes through a stream's
//! [`Redactor`], which also scrubs the exact secret values from its configuration — so even a
//! plugin that forgets to mask cannot leak a password through the gateway.

use serde_json::{Map, Value};

pub use camgate_plugin_api::text::{MASK, mask_url_credentials, url_password_ranges};

/// Is `key` the name of an option that holds a secret?
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "token", "secret", "api_key", "apikey"]
        .iter()
        .any(|needle| key.contains(needle))
}

/// Returns a copy of source options safe to show: secret-named keys are dropped and URL
/// credentials in every string are masked.
pub fn public_options(options: &Map<String, Value>) -> Map<String, Value> {
    options
        .iter()
        .filter(|(key, _)| !is_secret_key(key))
        .map(|(key, value)| (key.clone(), public_value(value)))
        .collect()
}

/// The form of one option value that clients are shown: URL passwords masked, secret-named
/// keys of nested objects dropped.
pub fn public_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(mask_url_credentials(s)),
        Value::Array(items) => Value::Array(items.iter().map(public_value).collect()),
        Value::Object(map) => Value::Object(public_options(map)),
        other => other.clone(),
    }
}

/// Scrubs one stream's secrets from any text: URL credentials, and the literal values of its
/// secret options and URL passwords (also percent-decoded).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Collects the secrets found in a source's options.
    pub fn from_options(options: &Map<String, Value>) -> Self {
        let mut secrets = Vec::new();
        collect_secrets(options, &mut secrets);
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Returns `text` with every known secret replaced by [`MASK`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = mask_url_credentials(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }
}

fn collect_secrets(options: &Map<String, Value>, secrets: &mut Vec<String>) {
    for (key, value) in options {
        match value {
            Value::String(s) if is_secret_key(key) => {
                secrets.push(s.clone());
                secrets.push(percent_decode(s));
            }
            Value::String(s) => {
                for password in url_passwords(s) {
                    secrets.push(percent_decode(password));
                    secrets.push(password.to_owned());
                }
            }
            Value::Object(map) => collect_secrets(map, secrets),
            _ => {}
        }
    }
}

/// Every URL password in `text`, located by position like the masking (so a password with
/// `/`, `#`, `?` or `'` in it is found whole).
pub fn url_passwords(text: &str) -> impl Iterator<Item = &str> {
    url_password_ranges(text).into_iter().map(move |r| &text[r])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn public_options_drop_secret_keys_and_mask_urls() {
        let options = json!({"url": "rtsp://a:b@cam/x", "password": "s3cret", "fps": 10, "auth": {"token": "t"}});
        let public = public_options(options.as_object().unwrap());
        assert_eq!(
            Value::Object(public),
            json!({"url": "rtsp://a:***@cam/x", "fps": 10, "auth": {}})
        );
    }

    #[test]
    fn redactor_scrubs_literal_and_decoded_secrets() {
        let options = json!({"url": "rtsp://a:p%40ss@cam/x", "password": "hunter2"});
        let redactor = Redactor::from_options(options.as_object().unwrap());
        let text = "auth failed for hunter2 and p@ss and p%40ss";
        let scrubbed = redactor.scrub(text);
        assert!(!scrubbed.contains("hunter2"), "{scrubbed}");
        assert!(!scrubbed.contains("p@ss"), "{scrubbed}");
        assert!(!scrubbed.contains("p%40ss"), "{scrubbed}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            /// Whatever a plugin writes, a URL password of the stream's options never
            /// reaches the gateway's output, bare or inside a URL.
            #[test]
            fn scrub_hides_url_passwords_with_any_characters(
                password in "[!-~]{4,24}",
                before in "[ -~]{0,30}",
                after in "[ -~]{0,30}",
            ) {
                let url = format!("rtsp://admin:{password}@10.0.0.5:554/live");
                let options = json!({ "url": url });
                let redactor = Redactor::from_options(options.as_object().unwrap());
                let shown = format!("{before}admin:{MASK}@10.0.0.5:554/live{after}");
                prop_assume!(!shown.contains(&password) && !shown.contains(&percent_decode(&password)));
                for text in [
                    format!("{before}{url}{after}"),
                    format!("{before}{password}{after}"),
                    format!("{before}'{url}'{after}"),
                ] {
                    let scrubbed = redactor.scrub(&text);
                    prop_assert!(!scrubbed.contains(&password), "{text} -> {scrubbed}");
                }
                let public = public_options(options.as_object().unwrap());
                prop_assert!(!public["url"].as_str().unwrap().contains(&password));
            }
        }
    }
}
