//! The origin check: only requests CloudFront forwarded reach the APIs.
//!
//! CloudFront adds [`crate::names::headers::ORIGIN`] with the origin
//! secret to every request to the API origins. The `$connect` authorizer and the `http`
//! role (and the local gateway, when given a secret) refuse a request whose header
//! matches neither the current nor the previous secret, before any other work. The
//! comparison takes the same time whatever the header holds, up to its length.

use http::HeaderMap;

use crate::names::{env, headers};

/// The accepted origin secrets: the current one and, during a rotation, the previous.
#[derive(Clone, PartialEq, Eq)]
pub struct OriginSecrets {
    accepted: Vec<Vec<u8>>,
}

impl std::fmt::Debug for OriginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginSecrets")
            .field("accepted", &self.accepted.len())
            .finish_non_exhaustive()
    }
}

impl OriginSecrets {
    /// Accepts `current` and, when given and not empty, `previous`. `None` when neither
    /// holds a value (the check is off).
    pub fn new(current: Option<&str>, previous: Option<&str>) -> Option<Self> {
        let accepted: Vec<Vec<u8>> = [current, previous]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        (!accepted.is_empty()).then_some(Self { accepted })
    }

    /// From [`env::ORIGIN_SECRET`] and [`env::ORIGIN_SECRET_PREVIOUS`]; `None` when
    /// neither is set (local runs and tests: no check).
    pub fn from_env() -> Option<Self> {
        let current = std::env::var(env::ORIGIN_SECRET).ok();
        let previous = std::env::var(env::ORIGIN_SECRET_PREVIOUS).ok();
        Self::new(current.as_deref(), previous.as_deref())
    }

    /// Whether `headers` carry an accepted secret in the origin header. Every accepted
    /// secret is compared (no early return), each in constant time.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers.get(headers::ORIGIN) else {
            return false;
        };
        self.allows_value(given.as_bytes())
    }

    /// Whether `given` is an accepted secret.
    pub fn allows_value(&self, given: &[u8]) -> bool {
        self.accepted
            .iter()
            .fold(false, |ok, secret| constant_time_eq(secret, given) | ok)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    // Over the expected value's length whatever `b` is, so the time does not tell how
    // long a matching prefix is.
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i).copied().unwrap_or(!*x);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(headers::ORIGIN, v);
        }
        h
    }

    #[test]
    fn current_and_previous_accepted_nothing_else() {
        let secrets = OriginSecrets::new(Some("new-secret"), Some("old-secret"));
        let Some(secrets) = secrets else {
            panic!("two secrets configured");
        };
        assert!(secrets.allows(&with("new-secret")));
        assert!(secrets.allows(&with("old-secret")));
        assert!(!secrets.allows(&with("new-secre")));
        assert!(!secrets.allows(&with("new-secret2")));
        assert!(!secrets.allows(&with("")));
        assert!(!secrets.allows(&HeaderMap::new()));
    }

    #[test]
    fn empty_values_turn_the_check_off() {
        assert_eq!(OriginSecrets::new(None, None), None);
        assert_eq!(OriginSecrets::new(Some(" "), Some("")), None);
        let Some(only) = OriginSecrets::new(Some("zz-top"), Some("")) else {
            panic!("one secret configured");
        };
        assert!(only.allows(&with("zz-top")));
        assert!(!only.allows(&with("")));
        assert!(!format!("{only:?}").contains("zz-top"));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }
}
