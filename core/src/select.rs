//! Route selection: `$request.body.<path>` evaluated against a frame, as API Gateway does.
//!
//! The frame is scanned once with a streaming visitor that walks only the selected path
//! and skips everything else without allocating.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The default route selection expression.
pub const DEFAULT_EXPRESSION: &str = "$request.body.action";

/// A parsed route selection expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSelection {
    expression: String,
    path: Vec<String>,
}

/// A route selection expression that API Gateway would not accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid route selection expression `{expression}`: {reason} (expected `$request.body.<field>[.<field>...]`)"
)]
pub struct SelectionError {
    expression: String,
    reason: &'static str,
}

/// What selection found in a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selected<'a> {
    /// The value at the path, as a string (numbers and booleans as written).
    Key(Cow<'a, str>),
    /// The frame is not JSON: it goes to `$default`.
    NotJson,
    /// The path does not exist in the frame, or holds `null`: `$default`.
    Missing,
    /// The path holds an object or array: `$default`.
    NotScalar,
}

impl Default for RouteSelection {
    fn default() -> Self {
        Self {
            expression: DEFAULT_EXPRESSION.to_owned(),
            path: vec!["action".to_owned()],
        }
    }
}

impl RouteSelection {
    /// Parses `$request.body.a.b`.
    pub fn parse(expression: &str) -> Result<Self, SelectionError> {
        let err = |reason| SelectionError {
            expression: expression.to_owned(),
            reason,
        };
        let rest = expression
            .strip_prefix("$request.body.")
            .ok_or_else(|| err("it must start with `$request.body.`"))?;
        let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(err("it has an empty path segment"));
        }
        if path.iter().any(|p| {
            !p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err(err(
                "path segments may hold letters, digits, `_` and `-` only",
            ));
        }
        Ok(Self {
            expression: expression.to_owned(),
            path,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Evaluates the expression against a frame's text.
    pub fn select<'a>(&self, body: &'a str) -> Selected<'a> {
        let mut de = serde_json::Deserializer::from_str(body);
        let found = match (PathSeed { path: &self.path }).deserialize(&mut de) {
            Ok(found) => found,
            Err(_) => return Selected::NotJson,
        };
        if de.end().is_err() {
            return Selected::NotJson;
        }
        found
    }
}

struct PathSeed<'p> {
    path: &'p [String],
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_> {
    type Value = Selected<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.path.split_first() {
            None => d.deserialize_any(Leaf),
            Some((head, rest)) => d.deserialize_any(Walk { head, rest }),
        }
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Walks into an object looking for `head`, then `rest`.
struct Walk<'p> {
    head: &'p str,
    rest: &'p [String],
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Selected<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Selected::Missing;
        // Later duplicates win, as with JSON.parse.
        while let Some(matches) = map.next_key_seed(KeyIs(self.head))? {
            if matches {
                found = map.next_value_seed(PathSeed { path: self.rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Selected::Missing)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Selected::Missing)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Selected::Missing)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Selected::Missing)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Selected::Missing)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Selected::Missing)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Selected::Missing)
    }
}

/// The value at the end of the path.
struct Leaf;

impl<'de> Visitor<'de> for Leaf {
    type Value = Selected<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Selected::Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Selected::Key(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Selected::Key(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Selected::Key(Cow::Borrowed(if v {
            "true"
        } else {
            "false"
        })))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Selected::Key(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Selected::Key(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Selected::Key(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Selected::Missing)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Selected::NotScalar)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Selected::NotScalar)
    }
}

/// Compares an object key with the expected one without allocating.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(expr: &str, body: &str) -> Selected<'static> {
        match RouteSelection::parse(expr).unwrap().select(body) {
            Selected::Key(k) => Selected::Key(Cow::Owned(k.into_owned())),
            Selected::NotJson => Selected::NotJson,
            Selected::Missing => Selected::Missing,
            Selected::NotScalar => Selected::NotScalar,
        }
    }

    fn key(k: &str) -> Selected<'static> {
        Selected::Key(Cow::Owned(k.to_owned()))
    }

    #[test]
    fn top_level_field() {
        let e = DEFAULT_EXPRESSION;
        assert_eq!(sel(e, r#"{"action":"join","room":"a"}"#), key("join"));
        assert_eq!(
            sel(e, r#"{"room":{"action":"x"},"action":"join"}"#),
            key("join")
        );
        assert_eq!(sel(e, r#" { "action" : "a\"b" } "#), key("a\"b"));
        assert_eq!(sel(e, r#"{"action":"x","action":"y"}"#), key("y"));
    }

    #[test]
    fn nested_paths() {
        let e = "$request.body.meta.route";
        assert_eq!(sel(e, r#"{"meta":{"route":"go"}}"#), key("go"));
        assert_eq!(
            sel(e, r#"{"meta":{"other":1},"route":"no"}"#),
            Selected::Missing
        );
        assert_eq!(sel(e, r#"{"meta":"route"}"#), Selected::Missing);
        assert_eq!(sel(e, r#"{"meta":[{"route":"go"}]}"#), Selected::Missing);
    }

    #[test]
    fn non_string_values_become_strings() {
        let e = DEFAULT_EXPRESSION;
        assert_eq!(sel(e, r#"{"action":5}"#), key("5"));
        assert_eq!(sel(e, r#"{"action":-2}"#), key("-2"));
        assert_eq!(sel(e, r#"{"action":true}"#), key("true"));
        assert_eq!(sel(e, r#"{"action":1.5}"#), key("1.5"));
        assert_eq!(sel(e, r#"{"action":null}"#), Selected::Missing);
        assert_eq!(sel(e, r#"{"action":{"a":1}}"#), Selected::NotScalar);
        assert_eq!(sel(e, r#"{"action":[1]}"#), Selected::NotScalar);
    }

    #[test]
    fn not_json_or_missing() {
        let e = DEFAULT_EXPRESSION;
        assert_eq!(sel(e, "hello"), Selected::NotJson);
        assert_eq!(sel(e, ""), Selected::NotJson);
        assert_eq!(sel(e, r#"{"action":"x"} trailing"#), Selected::NotJson);
        assert_eq!(sel(e, r#"{"action":"x""#), Selected::NotJson);
        assert_eq!(sel(e, r#"{"other":"x"}"#), Selected::Missing);
        assert_eq!(sel(e, r#"["action"]"#), Selected::Missing);
        assert_eq!(sel(e, r#""action""#), Selected::Missing);
        // Deep nesting is skipped iteratively: no stack overflow, no recursion limit hit.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(sel(e, &deep), Selected::Missing);
        let deep_obj = format!(
            r#"{{"x":{}{}, "action":"go"}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(sel(e, &deep_obj), key("go"));
    }

    #[test]
    fn bad_expressions() {
        assert!(RouteSelection::parse("$request.body.").is_err());
        assert!(RouteSelection::parse("$request.header.x").is_err());
        assert!(RouteSelection::parse("$request.body.a..b").is_err());
        assert!(RouteSelection::parse("${request.body.action}").is_err());
        assert!(RouteSelection::parse("$request.body.a.b").is_ok());
    }
}
