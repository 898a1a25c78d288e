//! YAML text to a tree of [`Node`]s that each carry their line:column, using
//! `serde-saphyr`'s `Spanned<T>`. Everything after this step (strict key
//! checks, type checks, substitution, validation) walks this tree, so every
//! message can point at the exact key or value.
//!
//! Invariants: the tree is built from parsed YAML only (never from
//! substituted text); scalars keep the type YAML 1.2 core resolution gave
//! them (quoted scalars are always strings); duplicate keys, syntax errors and
//! alias bombs are rejected here by the parser.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use super::error::{ConfigError, Location};

/// A YAML node with its position (1-based; 0 if the parser did not know it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
}

/// The node's content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order (the parser already rejected duplicate keys).
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// Article + type name for messages like "found a string".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a floating-point number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn location(&self, file: &Path) -> Location {
        Location {
            file: file.to_path_buf(),
            line: self.line,
            column: self.column,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            line: to_usize(spanned.referenced.line()),
            column: to_usize(spanned.referenced.column()),
        })
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

/// Parses `text` into a node tree; `Ok(None)` for an empty document (only
/// comments or whitespace). `file` is used for the error location only.
pub(crate) fn parse_yaml(text: &str, file: &Path) -> Result<Option<Node>, ConfigError> {
    let mut options = serde_saphyr::Options::default();
    // YAML 1.2 core booleans only: `n`, `no`, `off`, `yes` stay strings, so a
    // source option like `password: no` is not silently turned into `false`.
    options.strict_booleans = true;
    // `0755` and `1_000` stay strings (YAML 1.2 core has neither form), so
    // digit-only passwords or ids are not mangled into numbers.
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    // We render our own compiler-style messages; the snippet would be dropped.
    options.with_snippet = false;

    serde_saphyr::from_str_with_options::<Option<Node>>(text, options).map_err(|err| {
        let err = err.without_snippet();
        let message = format!("invalid YAML: {}", UserMessageFormatter.format_message(err));
        match err.location() {
            Some(loc) if loc.line() > 0 => ConfigError::at(
                Location {
                    file: file.to_path_buf(),
                    line: to_usize(loc.line()),
                    column: to_usize(loc.column()),
                },
                message,
            ),
            _ => ConfigError::whole_file(format!("{}: {message}", file.display())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Node>, String> {
        parse_yaml(text, Path::new("m.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_document_is_none() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# just a comment\n").unwrap(), None);
    }

    #[test]
    fn scalars_keep_types_and_positions() {
        let node = parse("a: 10\nb: \"10\"\nc: 1.5\nd: no\ne: true\nf: 0755\ng: ~\n")
            .unwrap()
            .unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        let values: Vec<_> = entries.iter().map(|(_, v)| v.value.clone()).collect();
        assert_eq!(
            values,
            vec![
                Value::UInt(10),
                Value::Str("10".into()),
                Value::Float(1.5),
                Value::Str("no".into()),
                Value::Bool(true),
                Value::Str("0755".into()),
                Value::Null,
            ]
        );
        assert_eq!((entries[1].0.line, entries[1].0.column), (2, 1));
        assert_eq!((entries[1].1.line, entries[1].1.column), (2, 4));
    }

    #[test]
    fn syntax_errors_have_positions() {
        assert_eq!(
            parse("a: \"x\n").unwrap_err(),
            "m.yaml:1:4: invalid YAML: unclosed quote"
        );
        assert_eq!(
            parse("a: 1\na: 2\n").unwrap_err(),
            "m.yaml:2:1: invalid YAML: duplicate mapping key `a` is not allowed here"
        );
    }
}
