//! Resource inputs: plain values, references to other resources' outputs, and the
//! compositions of both the program needs (strings built from outputs, JSON documents
//! with ARNs inside). Never null: an absent optional input is simply not in the map.

use std::collections::BTreeMap;

/// The signature key Pulumi uses for special values (assets, archives, secrets).
pub const SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
/// The signature of an archive.
pub const ARCHIVE_SIG: &str = "0def7320c3a5731c473e5ecbe6d01bc7";
/// The signature of a secret value (`{SIG_KEY: SECRET_SIG, "value": ...}`).
pub const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";

/// What is read from a resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The provider's id.
    Id,
    /// The resource's URN.
    Urn,
    /// An output property, with an optional path into it (`domainValidationOptions.0.resourceRecordName`).
    Output(String),
}

/// A reference to an output of a resource registered earlier in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref {
    /// The referenced resource's index in the plan.
    pub resource: usize,
    /// What is read.
    pub field: Field,
}

/// One input value.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// An output of another resource.
    Ref(Ref),
    /// A string made of the parts, each a string (or a reference to one).
    Concat(Vec<Input>),
    /// A list.
    List(Vec<Input>),
    /// An object (absent keys are absent; nothing is null).
    Object(BTreeMap<String, Input>),
    /// The inner value, serialised as a JSON string (IAM policies, redrive policies).
    Json(Box<Input>),
    /// A file archive (the Lambda artifact), by path.
    Archive(String),
    /// A secret: sent to the engine marked secret, so Pulumi encrypts it in the state
    /// and masks it in its output (the origin secret, provider credentials).
    Secret(Box<Input>),
}

impl Input {
    /// A string.
    pub fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    /// A list of strings.
    pub fn strs<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::List(items.into_iter().map(|s| Self::Str(s.into())).collect())
    }

    /// An object from pairs; `None` values are left out.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Option<Input>)>) -> Self {
        Self::Object(
            pairs
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.into(), v)))
                .collect(),
        )
    }

    /// Every reference inside, in order of appearance.
    pub fn refs(&self, out: &mut Vec<Ref>) {
        match self {
            Self::Ref(r) => out.push(r.clone()),
            Self::Concat(items) | Self::List(items) => items.iter().for_each(|i| i.refs(out)),
            Self::Object(map) => map.values().for_each(|i| i.refs(out)),
            Self::Json(inner) | Self::Secret(inner) => inner.refs(out),
            Self::Bool(_) | Self::Int(_) | Self::Str(_) | Self::Archive(_) => {}
        }
    }

    /// The value as JSON, references resolved by `resolve` (`None`: unknown, and so is
    /// the whole value).
    pub fn resolve(
        &self,
        resolve: &dyn Fn(&Ref) -> Option<serde_json::Value>,
    ) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match self {
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::from(*i),
            Self::Str(s) => Value::String(s.clone()),
            Self::Ref(r) => resolve(r)?,
            Self::Concat(parts) => {
                let mut s = String::new();
                for part in parts {
                    match part.resolve(resolve)? {
                        Value::String(p) => s.push_str(&p),
                        Value::Number(n) => s.push_str(&n.to_string()),
                        Value::Bool(b) => s.push_str(if b { "true" } else { "false" }),
                        other => s.push_str(&other.to_string()),
                    }
                }
                Value::String(s)
            }
            Self::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.resolve(resolve))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Self::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), v.resolve(resolve)?);
                }
                Value::Object(out)
            }
            Self::Json(inner) => Value::String(inner.resolve(resolve)?.to_string()),
            Self::Archive(path) => serde_json::json!({ SIG_KEY: ARCHIVE_SIG, "path": path }),
            Self::Secret(inner) => {
                serde_json::json!({ SIG_KEY: SECRET_SIG, "value": inner.resolve(resolve)? })
            }
        })
    }
}

impl From<&str> for Input {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for Input {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<bool> for Input {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<u32> for Input {
    fn from(i: u32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<Ref> for Input {
    fn from(r: Ref) -> Self {
        Self::Ref(r)
    }
}

/// A string made of parts: `concat!["arn:", api.field("executionArn"), "/*"]`.
#[macro_export]
macro_rules! concat_input {
    ($($part:expr),+ $(,)?) => {
        $crate::input::Input::Concat(vec![$($crate::input::Input::from($part)),+])
    };
}

/// Follows a dotted path (`a.0.b`) into a JSON value.
pub fn follow_path<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(value, |v, segment| match v {
        serde_json::Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        serde_json::Value::Object(map) => map.get(segment),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_references_make_the_whole_value_unknown() {
        let v = Input::object([
            ("a", Some(Input::str("x"))),
            ("b", None),
            (
                "c",
                Some(crate::concat_input![
                    "arn/",
                    Ref {
                        resource: 0,
                        field: Field::Id
                    }
                ]),
            ),
        ]);
        assert_eq!(v.resolve(&|_| None), None);
        let known = v
            .resolve(&|_| Some(serde_json::json!("id-1")))
            .expect("known");
        assert_eq!(known, serde_json::json!({"a": "x", "c": "arn/id-1"}));
    }

    #[test]
    fn json_documents_are_strings() {
        let doc = Input::Json(Box::new(Input::object([(
            "Resource",
            Some(Input::Ref(Ref {
                resource: 1,
                field: Field::Output("arn".into()),
            })),
        )])));
        let v = doc
            .resolve(&|_| Some(serde_json::json!("arn:aws:x")))
            .expect("known");
        assert_eq!(v, serde_json::json!(r#"{"Resource":"arn:aws:x"}"#));
    }

    #[test]
    fn paths() {
        let v = serde_json::json!({"a": [{"b": "c"}]});
        assert_eq!(follow_path(&v, "a.0.b"), Some(&serde_json::json!("c")));
        assert_eq!(follow_path(&v, "a.1.b"), None);
    }
}
