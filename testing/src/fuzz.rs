//! Shared by the `fuzz_*` targets: case counts, the checked-in corpora, a tokio runtime
//! for async code under test, and byte-level mutations.
//!
//! Every target is a proptest property run by `cargo test`. The number of generated cases
//! is the target's CI default unless `SWITCHBOARD_FUZZ_CASES` (or `PROPTEST_CASES`) says
//! otherwise. A failing input shrinks, is printed, and is persisted by proptest to
//! `tests/fuzz_corpus/<target>.proptest-regressions` (its seeds are replayed first on
//! every run); inputs worth keeping as files go to `tests/fuzz_corpus/<target>/`, which
//! each target's `corpus_replays` test runs through the same checks on every run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a broken corpus should fail loudly

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// The environment variable that sets the number of cases per property (a test-only
/// knob, like [`MOTO_ENV`](crate::MOTO_ENV)).
pub const FUZZ_CASES_ENV: &str = "SWITCHBOARD_FUZZ_CASES";

/// proptest's own variable for the number of cases, read after [`FUZZ_CASES_ENV`].
pub const PROPTEST_CASES_ENV: &str = "PROPTEST_CASES";

/// Cases per property: [`FUZZ_CASES_ENV`], else [`PROPTEST_CASES_ENV`], else `default`.
pub fn cases(default: u32) -> u32 {
    [FUZZ_CASES_ENV, PROPTEST_CASES_ENV]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
        .unwrap_or(default)
}

/// A proptest configuration with [`cases`] and failures persisted beside the corpus.
pub fn config(default_cases: u32, regressions: &'static str) -> Config {
    Config {
        cases: cases(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        // Shrinking a failure found in a long run may take a while; bound it.
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

/// The corpus files of `target` (`{crate_dir}/tests/fuzz_corpus/<target>/*`), sorted by
/// name; `crate_dir` is the calling test's `env!("CARGO_MANIFEST_DIR")`.
pub fn corpus(crate_dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(crate_dir)
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

/// One multi-threaded runtime for the async code under test, shared by all cases.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Flip bits of the byte at (index modulo length).
    Flip(usize, u8),
    /// Insert a byte.
    Insert(usize, u8),
    /// Remove a byte.
    Remove(usize),
    /// Cut the input here.
    Truncate(usize),
    /// Copy a slice of the input elsewhere (duplicated keys, repeated structure).
    Splice(usize, usize, usize),
}

/// Bytes that matter to JSON and base64url, often more interesting than random ones.
const SPECIAL: &[u8] =
    b"{}[]\",:\\.-_=+/0123456789eEtrufalsn \t\n\x00\x7f\xc3\xa9\xff\xfe\xed\xa0\x80";

/// Mutations biased towards structural bytes.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        3 => prop::sample::select(SPECIAL.to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        any::<(usize, u8)>().prop_map(|(i, b)| Mutation::Flip(i, b | 1)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<(usize, usize, usize)>().prop_map(|(a, b, c)| Mutation::Splice(a, b, c)),
    ]
}

/// Applies `mutations` to `input`, in order.
pub fn mutate(input: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = input.to_vec();
    for m in mutations {
        let len = out.len();
        match *m {
            Mutation::Flip(i, b) if len > 0 => out[i % len] ^= b,
            Mutation::Insert(i, b) => out.insert(i % (len + 1), b),
            Mutation::Remove(i) if len > 0 => {
                out.remove(i % len);
            }
            Mutation::Truncate(i) => out.truncate(i % (len + 1)),
            Mutation::Splice(from, n, to) if len > 0 => {
                let from = from % len;
                let n = n % (len - from).min(64) + 1;
                let n = n.min(len - from);
                let chunk = out[from..from + n].to_vec();
                let to = to % (len + 1);
                out.splice(to..to, chunk);
            }
            _ => {}
        }
    }
    out
}

/// JSON values for structure-aware mutations: every type, odd strings, big and deep.
pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "",
            "CONNECT",
            "MESSAGE",
            "DISCONNECT",
            "$connect",
            "$disconnect",
            "$default",
            "ping",
            "echo",
            "alice",
            "bad user!",
            "{\"action\":\"ping\"}",
            "{\"action\":\"echo\",\"x\":[1,2]}",
            "[[[[[[[[[[",
            "\u{0}",
            "\u{feff}",
            "é😀",
            "%ff%fe",
            "-1",
            "1e400",
            "NaN",
            "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
            "Bearer x.y.z",
            "user=alice&token=a.b.c",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        (0usize..200_000).prop_map(|n| Value::String("x".repeat(n))),
        (0usize..100).prop_map(|d| serde_json::from_str::<Value>(&format!(
            "{}{}",
            "[".repeat(d),
            "]".repeat(d)
        ))
        .unwrap_or(Value::Null)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z$]{0,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// One structural edit of a JSON document.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Replace the node at (index modulo node count), in depth-first order.
    Replace(usize, serde_json::Value),
    /// Remove a key of the object at (index modulo object count).
    Remove(usize, usize),
    /// Insert (or overwrite) a key of the object at (index modulo object count).
    Insert(usize, String, serde_json::Value),
    /// Replace the node at (index modulo node count) by a value of its own type (so that
    /// typed event structs still parse): a string by the string, a number by the number,
    /// a boolean negated, an array cut to (length modulo its length + 1).
    Retype(usize, String, i64, usize),
}

/// Edits, with keys that matter to the event types more likely than random ones.
pub fn edit() -> impl Strategy<Value = Edit> {
    let key = prop_oneof![
        3 => prop::sample::select(vec![
            "eventType", "routeKey", "body", "connectionId", "requestContext", "headers",
            "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters",
            "user", "token", "authorizer", "identity", "Records", "messageId", "attributes",
            "MessageGroupId", "ApproximateReceiveCount", "userAttributes", "email",
            "rawPath", "rawQueryString", "http", "method", "path", "isBase64Encoded",
            "cookies", "jwt", "claims", "lambda", "methodArn", "connectedAt",
            "disconnectStatusCode", "Sec-WebSocket-Protocol", "Authorization", "v", "payload",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z-]{0,10}",
    ];
    let text = prop_oneof![
        2 => "\\PC{0,24}",
        2 => prop::sample::select(vec![
            "", "CONNECT", "MESSAGE", "DISCONNECT", "$connect", "$disconnect", "$default",
            "ping", "echo", "alice", "bad user!", "{\"action\":\"ping\"}", "[[[[",
            "{\"action\":\"echo\",\"x\":[1,2]}", "\u{0}", "é😀", "%ff%fe", "a,b",
            "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "Bearer x.y.z", "user=alice&token=a.b.c",
            "GET", "POST", "/http/me", "/http/../me", "//", "audit", "1", "true", "2.0",
        ])
        .prop_map(str::to_owned),
        1 => (0usize..100_000).prop_map(|n| "x".repeat(n)),
    ];
    prop_oneof![
        6 => (any::<usize>(), text, any::<i64>(), any::<usize>())
            .prop_map(|(i, t, n, k)| Edit::Retype(i, t, n, k)),
        1 => (any::<usize>(), json_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        1 => any::<(usize, usize)>().prop_map(|(i, k)| Edit::Remove(i, k)),
        1 => (any::<usize>(), key, json_value()).prop_map(|(i, k, v)| Edit::Insert(i, k, v)),
    ]
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn collect_paths(value: &serde_json::Value, at: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, bool)>) {
    out.push((at.clone(), value.is_object()));
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                at.push(Step::Key(k.clone()));
                collect_paths(v, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Step::Index(i));
                collect_paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn node_at<'v>(mut value: &'v mut serde_json::Value, path: &[Step]) -> &'v mut serde_json::Value {
    for step in path {
        value = match step {
            Step::Key(k) => value.get_mut(k.as_str()).unwrap(),
            Step::Index(i) => value.get_mut(*i).unwrap(),
        };
    }
    value
}

/// Applies `edits` to `doc`, in order.
pub fn apply_edits(doc: &mut serde_json::Value, edits: &[Edit]) {
    for edit in edits {
        let mut paths = Vec::new();
        collect_paths(doc, &mut Vec::new(), &mut paths);
        let objects: Vec<&Vec<Step>> = paths.iter().filter(|(_, o)| *o).map(|(p, _)| p).collect();
        match edit {
            Edit::Replace(i, v) => {
                let path = paths[i % paths.len()].0.clone();
                *node_at(doc, &path) = v.clone();
            }
            Edit::Retype(i, text, n, k) => {
                let path = paths[i % paths.len()].0.clone();
                let node = node_at(doc, &path);
                match node {
                    serde_json::Value::String(s) => *s = text.clone(),
                    serde_json::Value::Number(_) => *node = serde_json::json!(n),
                    serde_json::Value::Bool(b) => *b = !*b,
                    serde_json::Value::Array(items) => items.truncate(k % (items.len() + 1)),
                    _ => {}
                }
            }
            Edit::Remove(i, k) if !objects.is_empty() => {
                let path = objects[i % objects.len()].clone();
                if let serde_json::Value::Object(map) = node_at(doc, &path)
                    && !map.is_empty()
                {
                    let key = map.keys().nth(k % map.len()).unwrap().clone();
                    map.remove(&key);
                }
            }
            Edit::Insert(i, key, v) if !objects.is_empty() => {
                let path = objects[i % objects.len()].clone();
                if let serde_json::Value::Object(map) = node_at(doc, &path) {
                    map.insert(key.clone(), v.clone());
                }
            }
            _ => {}
        }
    }
}
