//! Fuzz target: route selection (`switchboard_core::select`) on hostile frames.
//!
//! Properties, for arbitrary bytes, generated JSON (nesting, duplicate keys, escapes in
//! keys and values, every shape of number) and mutations of it:
//! - `select` never panics, however deep or broken the input;
//! - whenever `serde_json` can parse the frame into a `Value` (so: depth up to its
//!   recursion limit of 128), `select` agrees with an oracle that walks the `Value` by
//!   the documented rules (ARCHITECTURE.md, "Route selection"): strings as they are,
//!   booleans `true`/`false`, integers in decimal, other numbers as Rust prints the
//!   `f64` (`1.0` → `1`, `1e2` → `100`), `null` / missing / not an object on the way →
//!   `Missing`, objects and arrays → `NotScalar`, duplicate keys → the last one;
//! - whenever `serde_json` rejects the frame for any reason but depth, it is `NotJson`.
//!
//! CI runs a few thousand cases; `SWITCHBOARD_FUZZ_CASES=1000000 cargo test -p switchboard
//! --release --test fuzz_select` runs a long campaign. Corpus: `tests/fuzz_corpus/select/`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use switchboard_testing::fuzz as fuzz_support;

use std::borrow::Cow;

use proptest::prelude::*;
use serde_json::Value;
use switchboard_core::select::{DEFAULT_EXPRESSION, RouteSelection, Selected};

const EXPRESSIONS: &[&str] = &[
    DEFAULT_EXPRESSION,
    "$request.body.meta.route",
    "$request.body.a.b.c",
];

/// What the oracle expects, owned.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Key(String),
    NotJson,
    Missing,
    NotScalar,
}

fn owned(s: Selected<'_>) -> Expect {
    match s {
        Selected::Key(k) => Expect::Key(k.into_owned()),
        Selected::NotJson => Expect::NotJson,
        Selected::Missing => Expect::Missing,
        Selected::NotScalar => Expect::NotScalar,
    }
}

/// The documented rules, applied to a fully parsed `Value`. `None` when `serde_json`
/// refuses the depth, so there is nothing to compare with.
fn oracle(path: &[&str], body: &str) -> Option<Expect> {
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) if beyond_serde_json(&e) => return None,
        Err(_) => return Some(Expect::NotJson),
    };
    let mut at = &value;
    for segment in path {
        match at {
            Value::Object(map) => match map.get(*segment) {
                Some(next) => at = next,
                None => return Some(Expect::Missing),
            },
            _ => return Some(Expect::Missing),
        }
    }
    Some(match at {
        Value::Null => Expect::Missing,
        Value::Bool(b) => Expect::Key(b.to_string()),
        Value::Number(n) => Expect::Key(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => f.to_string(),
            (None, None, None) => unreachable!("a JSON number is i64, u64 or f64"),
        }),
        Value::String(s) => Expect::Key(s.clone()),
        Value::Array(_) | Value::Object(_) => Expect::NotScalar,
    })
}

/// Whether `serde_json` refused a frame that the JSON grammar (RFC 8259) accepts: too
/// deep for its recursion limit, a number outside `f64`'s range, or a `\\u` escape of a
/// lone surrogate. `select` skips such values like any other (as `JSON.parse` accepts
/// them) and answers `NotJson` only when the selected value itself is one, so for these
/// frames there is no oracle, only the never-panic property.
fn beyond_serde_json(e: &serde_json::Error) -> bool {
    let message = e.to_string();
    [
        "recursion limit",
        "number out of range",
        "surrogate",
        "hex escape",
        "unicode code point",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Selects with every expression and compares with the oracle where there is one.
fn check(body: &str) -> Result<(), TestCaseError> {
    for expression in EXPRESSIONS {
        let selection = RouteSelection::parse(expression).unwrap();
        let got = owned(selection.select(body));
        let path: Vec<&str> = expression["$request.body.".len()..].split('.').collect();
        if let Some(want) = oracle(&path, body) {
            prop_assert_eq!(
                &got,
                &want,
                "expression {} on {:?}",
                expression,
                excerpt(body)
            );
        }
    }
    Ok(())
}

/// Frames arrive as text: invalid UTF-8 is the socket's business (close 1007), so bytes
/// are tried as UTF-8 and, failing that, lossily.
fn check_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => check(text),
        Err(_) => check(&String::from_utf8_lossy(bytes)),
    }
}

fn excerpt(s: &str) -> Cow<'_, str> {
    if s.len() <= 300 {
        Cow::Borrowed(s)
    } else {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Cow::Owned(format!("{}… ({} bytes)", &s[..end], s.len()))
    }
}

/// A JSON document as a tree whose leaves are raw JSON text, so that keys and strings
/// can carry escapes and numbers any spelling; objects may repeat keys.
#[derive(Clone, Debug)]
enum J {
    Raw(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn render(&self, pretty: bool, out: &mut String) {
        let sep = if pretty { " " } else { "" };
        match self {
            J::Raw(text) => out.push_str(text),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(sep);
                    }
                    item.render(pretty, out);
                }
                out.push(']');
            }
            J::Obj(entries) => {
                out.push('{');
                out.push_str(sep);
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(if pretty { "\n  " } else { "" });
                    }
                    out.push('"');
                    out.push_str(key);
                    out.push('"');
                    out.push_str(sep);
                    out.push(':');
                    out.push_str(sep);
                    value.render(pretty, out);
                }
                out.push_str(sep);
                out.push('}');
            }
        }
    }
}

/// Key text (inside the quotes, escapes raw): mostly the names on the paths.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["action", "meta", "route", "a", "b", "c"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec![
            "act\\u0069on", "\\u0061ction", "Action", "action ", "", "\\\"action\\\"",
            "ro\\u0075te", "m\\u0065ta", "\\ud83d\\ude00", "act\\nion", "é", "\\u0000",
        ]).prop_map(str::to_owned),
        1 => "[a-z]{0,6}",
    ]
}

/// Scalars as raw JSON text: every shape of number, strings with escapes, literals.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-zA-Z0-9 _$-]{0,10}".prop_map(|s| format!("\"{s}\"")),
        1 => prop::sample::select(vec![
            "\"\"", "\"a\\\"b\"", "\"\\n\\t\\\\\\/\\b\\f\\r\"", "\"\\ud83d\\ude00\"",
            "\"\\ud800\"", "\"\\udc00x\"", "\"\\u0000\"", "\"é😀\"", "\"\\uZZZZ\"", "\"$default\"",
            "\"join\"", "\"ping\"",
        ]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["true", "false", "null"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec![
            "0", "-0", "1", "5", "-2", "1.0", "1.5", "-0.0", "1e2", "1E-7", "2.5e+3", "0.1",
            "9223372036854775807", "9223372036854775808", "18446744073709551615",
            "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
            "123456789012345678901234567890", "1e308", "1e309", "1e400", "-1e400",
            "4.9e-324", "1e-400", "01", "1.", ".5", "+1", "NaN", "Infinity", "0x10",
        ]).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<u64>().prop_map(|u| u.to_string()),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
    ]
}

fn document() -> impl Strategy<Value = J> {
    let leaf = scalar().prop_map(J::Raw);
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
            prop::collection::vec((key(), inner), 0..6).prop_map(J::Obj),
        ]
    })
}

/// A generated document, rendered compact or spaced.
fn document_text() -> impl Strategy<Value = String> {
    (document(), any::<bool>()).prop_map(|(doc, pretty)| {
        let mut out = String::new();
        doc.render(pretty, &mut out);
        out
    })
}

proptest! {
    #![proptest_config(fuzz_support::config(4000, "tests/fuzz_corpus/select.proptest-regressions"))]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_bytes(&bytes)?;
    }

    #[test]
    fn arbitrary_text(text in "\\PC{0,200}") {
        check(&text)?;
    }

    #[test]
    fn generated_json(text in document_text()) {
        check(&text)?;
    }

    #[test]
    fn mutated_json(
        text in document_text(),
        mutations in prop::collection::vec(fuzz_support::mutation(), 1..6),
    ) {
        check_bytes(&fuzz_support::mutate(text.as_bytes(), &mutations))?;
    }

    /// Deep nesting around, before and at the selected field: never a stack overflow,
    /// and the answer the rules give (beyond serde_json's depth limit, so no oracle).
    #[test]
    fn deep_nesting(
        depth in 0usize..20_000,
        open in prop::sample::select(vec!["[", "{\"a\":", "{\"action\":", "[{\"x\":1},"]),
        closed in any::<bool>(),
        place in 0u8..3,
    ) {
        let close_of = |o: &str| if o.starts_with('[') { "]" } else { "}" };
        let nest = if depth == 0 {
            "0".to_owned()
        } else if closed {
            format!("{}0{}", open.repeat(depth), close_of(open).repeat(depth))
        } else {
            open.repeat(depth)
        };
        let body = match place {
            0 => format!(r#"{{"x":{nest},"action":"go"}}"#),
            1 => format!(r#"{{"action":"go","x":{nest}}}"#),
            _ => format!(r#"{{"action":{nest}}}"#),
        };
        let got = owned(RouteSelection::default().select(&body));
        let want = if !closed && depth > 0 {
            Expect::NotJson
        } else {
            match place {
                0 | 1 => Expect::Key("go".to_owned()),
                _ if depth == 0 => Expect::Key("0".to_owned()),
                _ => Expect::NotScalar,
            }
        };
        prop_assert_eq!(got, want, "depth {} of {:?}, place {}", depth, open, place);
        check(&body)?;
    }
}

/// Every corpus file, replayed with the same properties.
#[test]
fn corpus_replays() {
    let files = fuzz_support::corpus(env!("CARGO_MANIFEST_DIR"), "select");
    for (name, bytes) in &files {
        if let Err(e) = check_bytes(bytes) {
            panic!("corpus file {name}: {e}");
        }
    }
}

/// The oracle itself: a few hand-checked answers, so that a broken oracle cannot make the
/// properties vacuous.
#[test]
fn oracle_is_sane() {
    let p = ["action"];
    assert_eq!(
        oracle(&p, r#"{"action":"x","action":"y"}"#),
        Some(Expect::Key("y".into()))
    );
    assert_eq!(
        oracle(&p, r#"{"act\u0069on":1.0}"#),
        Some(Expect::Key("1".into()))
    );
    assert_eq!(oracle(&p, r#"{"action":null}"#), Some(Expect::Missing));
    assert_eq!(oracle(&p, r#"{"action":[]}"#), Some(Expect::NotScalar));
    assert_eq!(oracle(&p, r#"{"action":"\ud800"}"#), None);
    assert_eq!(oracle(&p, r#"{"action":"\u12"}"#), Some(Expect::NotJson));
    assert_eq!(oracle(&p, "{\"action\":\"a\u{1}\"}"), Some(Expect::NotJson));
    assert_eq!(oracle(&p, "nope"), Some(Expect::NotJson));
    assert_eq!(oracle(&p, &"[".repeat(200)), None);
    // Values serde_json cannot hold: skipped ones do not matter, a selected one is $default.
    let sel = |body: &str| owned(RouteSelection::default().select(body));
    assert_eq!(
        sel(r#"{"action":"go","x":"\ud800","y":1e400}"#),
        Expect::Key("go".into())
    );
    assert_eq!(sel(r#"{"action":"\ud800"}"#), Expect::NotJson);
    assert_eq!(sel(r#"{"action":1e400}"#), Expect::NotJson);
    // And `select` agrees on the same inputs.
    for body in [
        r#"{"action":"x","action":"y"}"#,
        r#"{"act\u0069on":1.0}"#,
        "nope",
    ] {
        check(body).unwrap();
    }
}
