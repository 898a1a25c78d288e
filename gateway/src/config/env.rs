//! `${VAR}` / `${VAR:-default}` substitution in one already-parsed scalar
//! string, with `$${` as the escape for a literal `${`.
//!
//! Invariants: runs on string values after YAML parsing, never on the raw
//! text, so a variable's value cannot inject YAML structure; the environment
//! is an injected lookup function (tests never touch the process env); errors
//! name the variable but never contain a looked-up value. `${VAR:-default}`
//! follows the shell: the default also applies when `VAR` is set but empty.
//! Defaults are literal (no nested `${...}`) and cannot contain `}`.

/// Looks an environment variable up; `None` = unset. Injected so tests and
/// embedders control the environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the real process environment; pass `&process_env` to
/// [`super::load`] in production. Non-Unicode values count as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The result of substituting one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Substituted {
    pub value: String,
    /// Values inserted from the environment (not defaults): possibly secrets,
    /// which messages must not echo.
    pub env_values: Vec<String>,
}

/// Why a string could not be substituted. The messages contain only text
/// from the manifest itself, never environment values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubstError {
    #[error("environment variable `{0}` is not set (write `${{{0}:-default}}` to give a default)")]
    Unset(String),
    #[error(
        "unterminated `${{`: expected `${{NAME}}` or `${{NAME:-default}}` (write `$${{` for a literal `${{`)"
    )]
    Unterminated,
    #[error(
        "invalid variable name `{0}` in `${{...}}`: use letters, digits and `_`, not starting with a digit"
    )]
    BadName(String),
}

/// Substitutes every `${...}` in `input`.
pub(crate) fn substitute(input: &str, env: EnvLookup<'_>) -> Result<Substituted, SubstError> {
    let mut value = String::with_capacity(input.len());
    let mut env_values = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        value.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            value.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(SubstError::Unterminated)?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if !is_valid_name(name) {
                return Err(SubstError::BadName(name.to_owned()));
            }
            match (env(name), default) {
                (Some(found), Some(default)) if found.is_empty() => value.push_str(default),
                (Some(found), _) => {
                    value.push_str(&found);
                    env_values.push(found);
                }
                (None, Some(default)) => value.push_str(default),
                (None, None) => return Err(SubstError::Unset(name.to_owned())),
            }
            rest = &tail[end + 1..];
        } else {
            value.push('$');
            rest = &after[1..];
        }
    }
    value.push_str(rest);
    Ok(Substituted { value, env_values })
}

/// Escapes `text` so that [`substitute`] gives it back unchanged: every `${` becomes `$${`.
///
/// Used for data that must never be read as a reference, such as HTTP API input stored in
/// the API-managed streams file (an API client must not be able to read the environment).
pub(crate) fn escape(text: &str) -> String {
    text.replace("${", "$${")
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("admin".into()),
            "PASS" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(input: &str) -> Result<String, SubstError> {
        substitute(input, &env).map(|s| s.value)
    }

    #[test]
    fn plain_strings_pass_through() {
        let s = substitute("rtsp://cam/stream?a=$1&b=$", &env).unwrap();
        assert_eq!(s.value, "rtsp://cam/stream?a=$1&b=$");
        assert!(s.env_values.is_empty());
    }

    #[test]
    fn variables_and_defaults() {
        assert_eq!(sub("${USER}:${PASS}@cam").unwrap(), "admin:s3cr3t@cam");
        assert_eq!(sub("${NOPE:-fallback}").unwrap(), "fallback");
        assert_eq!(sub("${NOPE:-}").unwrap(), "");
        assert_eq!(sub("${USER:-other}").unwrap(), "admin");
        assert_eq!(sub("${EMPTY:-used}").unwrap(), "used");
        assert_eq!(sub("${EMPTY}").unwrap(), "");
        let s = substitute("${PASS}${NOPE:-x}", &env).unwrap();
        assert_eq!(s.env_values, vec!["s3cr3t".to_owned()]);
    }

    #[test]
    fn escape_gives_literal() {
        assert_eq!(sub("$${USER}").unwrap(), "${USER}");
        assert_eq!(sub("a$${b}c${USER}").unwrap(), "a${b}cadmin");
        assert!(substitute("$${PASS}", &env).unwrap().env_values.is_empty());
    }

    #[test]
    fn escaped_text_is_literal() {
        assert_eq!(escape("${USER} $${x} $"), "$${USER} $$${x} $");
        assert_eq!(sub(&escape("${PASS}")).unwrap(), "${PASS}");
        assert_eq!(sub(&escape("$$${USER}")).unwrap(), "$$${USER}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any text, however many `$`, `{` and `}` it holds, survives escape + substitute
        /// unchanged and takes nothing from the environment.
        #[test]
        fn substitute_of_escape_is_identity(text in "[$${}A-Z_a-z:0-9 -]{0,40}|\\PC{0,40}") {
            let out = substitute(&escape(&text), &env).unwrap();
            proptest::prop_assert_eq!(out.value, text);
            proptest::prop_assert!(out.env_values.is_empty());
        }
    }

    #[test]
    fn errors_name_variable_only() {
        let err = sub("x${MISSING}y").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `MISSING` is not set (write `${MISSING:-default}` to give a default)"
        );
        assert_eq!(sub("${USER").unwrap_err(), SubstError::Unterminated);
        assert_eq!(
            sub("${1X}").unwrap_err(),
            SubstError::BadName("1X".to_owned())
        );
        assert_eq!(sub("${}").unwrap_err(), SubstError::BadName(String::new()));
    }
}
