//! What the local gateway exposes, and to whom: a pure policy, decided from the bind address,
//! the peer's address, a few flags and (for the admin secret) the request's headers.
//!
//! | what | bound to loopback | bound elsewhere (`0.0.0.0`, `::`, an interface) |
//! | --- | --- | --- |
//! | WebSocket and HTTP routes | this host | the network (that is what binding there is for) |
//! | `@connections` | SigV4-signed requests; unsigned with `--no-sigv4` | SigV4-signed requests; `--no-sigv4` refuses to start |
//! | `/local/*` (token, connections, queues, manifest, stats, console) | loopback peers | loopback peers; others only with `Authorization: Bearer <admin secret>` when started with `--expose-local-endpoints` |
//! | `--dev-auth` (`?user=NAME` identities) | allowed | refuses to start unless `--force-dev-auth`, which prints a warning |
//!
//! The issuer's public documents (`/local/.well-known/*`: OpenID discovery, the public keys)
//! stay open to everyone.
//!
//! A loopback peer is `127.0.0.0/8`, `::1` or an IPv4-mapped `::ffff:127.x.x.x` (what a
//! dual-stack `::` socket reports for an IPv4 loopback client). A tunnel or reverse proxy
//! running on this host makes its remote clients look local: the policy cannot see past it.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// Paths under this prefix are local-only.
pub const LOCAL_PREFIX: &str = "/local";

/// The local-only endpoints that exist today (the console will live under [`LOCAL_PREFIX`] too).
pub const LOCAL_ENDPOINTS: [&str; 5] = [
    "/local/token",
    "/local/connections",
    "/local/queues",
    "/local/manifest",
    "/local/stats",
];

/// How many random bytes an admin secret has.
pub const ADMIN_SECRET_BYTES: usize = 32;

/// The gateway's exposure settings, from its command line.
#[derive(Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The address the gateway listens on.
    pub bind: IpAddr,
    /// `@connections` requires SigV4 (default `true`; `--no-sigv4` turns it off).
    pub sigv4: bool,
    /// Set with `--expose-local-endpoints`: non-loopback peers presenting it may use `/local/*`.
    pub admin_secret: Option<AdminSecret>,
    /// `--dev-auth`: `?user=NAME` identities without tokens.
    pub dev_auth: bool,
    /// `--force-dev-auth`: allow dev auth off loopback anyway.
    pub force_dev_auth: bool,
}

impl fmt::Debug for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exposure")
            .field("bind", &self.bind)
            .field("sigv4", &self.sigv4)
            .field("admin_secret", &self.admin_secret)
            .field("dev_auth", &self.dev_auth)
            .field("force_dev_auth", &self.force_dev_auth)
            .finish()
    }
}

/// Why the gateway refuses to start with these settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExposureError {
    /// `--no-sigv4` on a non-loopback address.
    #[error(
        "--no-sigv4 is refused when binding {bind}: anyone who can reach the gateway could send to, read and close every connection through @connections. Bind 127.0.0.1 or ::1 to run without signatures, or keep SigV4 on and sign with the access key printed at start."
    )]
    NoSigV4OffLoopback {
        /// The bind address.
        bind: IpAddr,
    },
    /// `--dev-auth` on a non-loopback address without `--force-dev-auth`.
    #[error(
        "--dev-auth is refused when binding {bind}: anyone who can reach the gateway could connect as any user with ?user=NAME. Bind 127.0.0.1 or ::1, or add --force-dev-auth if every client that can reach {bind} is trusted."
    )]
    DevAuthOffLoopback {
        /// The bind address.
        bind: IpAddr,
    },
    /// An admin secret that is empty or whitespace (it would match `Bearer ` alone).
    #[error(
        "the admin secret is empty: use the one --expose-local-endpoints generates, or a non-empty one"
    )]
    EmptyAdminSecret,
}

/// Every reason the gateway refuses to start, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to start the local gateway:{}", list(.problems))]
pub struct StartupRefused {
    /// The problems, in the order they were found.
    pub problems: Vec<ExposureError>,
}

fn list(problems: &[ExposureError]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// Whether a request to a local-only endpoint may proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAccess {
    /// Serve it.
    Allowed,
    /// Answer `status` with `message` and do nothing else.
    Refused {
        /// Always 403.
        status: StatusCode,
        /// Says why and what would be accepted (never the secret).
        message: String,
    },
}

/// The SigV4 identity to show in the start banner: never the secret access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigV4Identity<'a> {
    /// The access key id requests must be signed with.
    pub access_key_id: &'a str,
    /// The region requests must be scoped to.
    pub region: &'a str,
}

/// The bearer secret that opens `/local/*` to other hosts (`--expose-local-endpoints`).
/// Its `Debug` does not show it; [`AdminSecret::expose`] does, for the start banner.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminSecret(String);

impl AdminSecret {
    /// A new random secret ([`generate_admin_secret`]).
    pub fn generate() -> Result<Self, SecretError> {
        generate_admin_secret().map(Self)
    }

    /// The secret itself: print it once, in the banner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for AdminSecret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl fmt::Debug for AdminSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminSecret(** redacted **)")
    }
}

/// The random number generator could not produce a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed; no admin secret was generated")]
pub struct SecretError;

impl Exposure {
    /// The defaults for `bind`: SigV4 on, no admin secret, no dev auth.
    pub fn new(bind: IpAddr) -> Self {
        Self {
            bind,
            sigv4: true,
            admin_secret: None,
            dev_auth: false,
            force_dev_auth: false,
        }
    }

    /// Whether the gateway listens on loopback only.
    pub fn bound_to_loopback(&self) -> bool {
        is_loopback(self.bind)
    }

    /// Whether `@connections` requests must be SigV4-signed.
    pub fn management_requires_sigv4(&self) -> bool {
        self.sigv4
    }

    /// Checks the settings before binding: the warnings to print, or every reason to refuse.
    pub fn check_startup(&self) -> Result<Vec<String>, StartupRefused> {
        let off_loopback = !self.bound_to_loopback();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        if off_loopback && !self.sigv4 {
            problems.push(ExposureError::NoSigV4OffLoopback { bind: self.bind });
        }
        if off_loopback && self.dev_auth {
            if self.force_dev_auth {
                warnings.push(format!(
                    "warning: --force-dev-auth: dev auth is on while binding {}; anyone who can reach it can connect as any user with ?user=NAME",
                    self.bind
                ));
            } else {
                problems.push(ExposureError::DevAuthOffLoopback { bind: self.bind });
            }
        }
        if self
            .admin_secret
            .as_ref()
            .is_some_and(|s| s.0.trim().is_empty())
        {
            problems.push(ExposureError::EmptyAdminSecret);
        }
        if problems.is_empty() {
            Ok(warnings)
        } else {
            Err(StartupRefused { problems })
        }
    }

    /// Decides one request to a local-only endpoint ([`is_local_only_path`]) from `peer`.
    pub fn local_endpoint_access(&self, peer: IpAddr, headers: &HeaderMap) -> LocalAccess {
        if is_loopback(peer) {
            return LocalAccess::Allowed;
        }
        let refuse = |message: String| LocalAccess::Refused {
            status: StatusCode::FORBIDDEN,
            message,
        };
        let Some(secret) = self
            .admin_secret
            .as_ref()
            .map(AdminSecret::expose)
            .filter(|s| !s.trim().is_empty())
        else {
            return refuse(format!(
                "{LOCAL_PREFIX}/* answers loopback clients only, and this request came from {peer}. Start the gateway with --expose-local-endpoints to use them from elsewhere with an admin secret."
            ));
        };
        match bearer_token(headers) {
            Some(token) if secrets_match(token, secret) => LocalAccess::Allowed,
            Some(_) => refuse(format!(
                "The admin secret in the Authorization header is not this gateway's ({LOCAL_PREFIX}/* from {peer})."
            )),
            None => refuse(format!(
                "{LOCAL_PREFIX}/* from {peer} needs 'Authorization: Bearer <admin secret>' (printed when the gateway started)."
            )),
        }
    }

    /// The start banner's exposure lines. `sigv4` is what `@connections` checks, when on.
    pub fn banner_lines(&self, port: u16, sigv4: Option<SigV4Identity<'_>>) -> Vec<String> {
        let address = match self.bind {
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            IpAddr::V4(v4) => format!("{v4}:{port}"),
        };
        let mut lines = Vec::new();
        if self.bound_to_loopback() {
            lines.push(format!("  exposure     {address}: this host only"));
        } else {
            let reach = if self.bind.is_unspecified() {
                "every interface"
            } else {
                "this interface"
            };
            lines.push(format!(
                "  exposure     {address}: {reach}; routes and @connections are reachable from the network"
            ));
        }
        lines.push(self.local_endpoints_line());
        if let Some(secret) = self.admin_secret.as_ref().map(AdminSecret::expose) {
            lines.push(format!(
                "  admin secret {secret}  (shown once; send 'Authorization: Bearer <secret>' to {LOCAL_PREFIX}/* from other hosts)"
            ));
        }
        lines.push(match (self.sigv4, sigv4) {
            (true, Some(id)) => format!(
                "  @connections SigV4 required: service execute-api, region {}, access key id {}",
                id.region, id.access_key_id
            ),
            (true, None) => {
                "  @connections SigV4 required: service execute-api (no access key configured: every request is refused)"
                    .to_owned()
            }
            (false, _) => {
                "  @connections unsigned requests accepted (--no-sigv4; loopback only)".to_owned()
            }
        });
        if self.dev_auth {
            let who = if self.bound_to_loopback() {
                "this host"
            } else {
                "anyone who can reach the gateway (--force-dev-auth)"
            };
            lines.push(format!(
                "  dev auth     on: ?user=NAME identities for {who}"
            ));
        }
        lines
    }

    fn local_endpoints_line(&self) -> String {
        let endpoints = LOCAL_ENDPOINTS
            .iter()
            .map(|p| p.trim_start_matches("/local/"))
            .collect::<Vec<_>>()
            .join(", ");
        let who = match (&self.admin_secret, self.bound_to_loopback()) {
            (_, true) => "this host",
            (Some(_), false) => "loopback clients, and others with the admin secret",
            (None, false) => "loopback clients only (--expose-local-endpoints to open them)",
        };
        format!("  {LOCAL_PREFIX}/*     {endpoints}, console: {who}")
    }
}

/// Loopback: `127.0.0.0/8`, `::1`, or IPv4-mapped `::ffff:127.x.x.x`.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Public paths under `/local`: the issuer's OpenID discovery document and its public keys,
/// which any token verifier may fetch.
pub const PUBLIC_LOCAL_PREFIX: &str = "/local/.well-known/";

/// Whether `path` is `/local` or under `/local/` (the local-only endpoints and the console),
/// except the public [`PUBLIC_LOCAL_PREFIX`].
pub fn is_local_only_path(path: &str) -> bool {
    let under_local = path == LOCAL_PREFIX
        || path
            .strip_prefix(LOCAL_PREFIX)
            .is_some_and(|rest| rest.starts_with('/'));
    under_local && !path.starts_with(PUBLIC_LOCAL_PREFIX)
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if that is the form.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares in time independent of where the two differ (and of their lengths: both are
/// hashed first, and the digests are compared without an early exit).
fn secrets_match(given: &str, expected: &str) -> bool {
    let a = digest::digest(&digest::SHA256, given.as_bytes());
    let b = digest::digest(&digest::SHA256, expected.as_bytes());
    let diff = a
        .as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A new admin secret: 32 bytes from the system's CSPRNG, as unpadded URL-safe base64 (43 chars).
pub fn generate_admin_secret() -> Result<String, SecretError> {
    let mut bytes = [0u8; ADMIN_SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "s3cr3t-admin-value";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    const BINDS: [&str; 5] = ["127.0.0.1", "0.0.0.0", "::", "::1", "192.0.2.10"];
    const PEERS: [&str; 5] = [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "192.0.2.20",
        "10.1.2.3",
    ];

    /// What a request carries.
    #[derive(Debug, Clone, Copy)]
    enum Carries {
        Nothing,
        RightSecret,
        WrongSecret,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Expect {
        Allow,
        Refuse,
    }

    /// The whole matrix, written out: (admin secret set, what the request carries, peer) →
    /// expectation, for every bind address (the decision depends on the peer, not the bind:
    /// binding 0.0.0.0 does not open `/local/*` to loopback-looking peers any less).
    #[test]
    fn local_endpoint_matrix() {
        use Carries::*;
        use Expect::*;
        #[rustfmt::skip]
        let table: [(bool, Carries, [Expect; 5]); 6] = [
            //                          127.0.0.1 ::1    ::ffff:127 192.0.2.20 10.1.2.3
            (false, Nothing,     [Allow, Allow, Allow, Refuse, Refuse]),
            (false, RightSecret, [Allow, Allow, Allow, Refuse, Refuse]),
            (false, WrongSecret, [Allow, Allow, Allow, Refuse, Refuse]),
            (true,  Nothing,     [Allow, Allow, Allow, Refuse, Refuse]),
            (true,  RightSecret, [Allow, Allow, Allow, Allow,  Allow ]),
            (true,  WrongSecret, [Allow, Allow, Allow, Refuse, Refuse]),
        ];
        let mut checked = 0;
        for bind in BINDS {
            for (secret_set, carries, expected) in table {
                for (peer, expect) in PEERS.iter().zip(expected) {
                    let mut exposure = Exposure::new(ip(bind));
                    exposure.admin_secret =
                        secret_set.then(|| AdminSecret::from(SECRET.to_owned()));
                    let headers = match carries {
                        Nothing => HeaderMap::new(),
                        RightSecret => bearer(SECRET),
                        WrongSecret => bearer("not-the-secret"),
                    };
                    let got = exposure.local_endpoint_access(ip(peer), &headers);
                    let case =
                        format!("bind {bind}, peer {peer}, secret {secret_set}, {carries:?}");
                    match (expect, &got) {
                        (Allow, LocalAccess::Allowed) => {}
                        (Refuse, LocalAccess::Refused { status, message }) => {
                            assert_eq!(*status, StatusCode::FORBIDDEN, "{case}");
                            assert!(!message.contains(SECRET), "{case}: {message}");
                        }
                        _ => panic!("{case}: expected {expect:?}, got {got:?}"),
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 5 * 6 * 5);
    }

    /// Startup: (bind, sigv4, dev_auth, force_dev_auth) → refused problems / warnings.
    #[test]
    fn startup_matrix() {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Outcome {
            Ok,
            Warn,
            NoSigV4,
            DevAuth,
            Both,
        }
        use Outcome::*;
        // For each flag combination: loopback binds (127.0.0.1, ::1) vs the others.
        #[rustfmt::skip]
        let table: [(bool, bool, bool, Outcome, Outcome); 8] = [
            // sigv4  dev_auth force  loopback  elsewhere
            (true,  false, false, Ok, Ok),
            (true,  false, true,  Ok, Ok),
            (true,  true,  false, Ok, DevAuth),
            (true,  true,  true,  Ok, Warn),
            (false, false, false, Ok, NoSigV4),
            (false, false, true,  Ok, NoSigV4),
            (false, true,  false, Ok, Both),
            (false, true,  true,  Ok, NoSigV4),
        ];
        for bind in BINDS {
            for (sigv4, dev_auth, force, on_loopback, elsewhere) in table {
                let exposure = Exposure {
                    sigv4,
                    dev_auth,
                    force_dev_auth: force,
                    ..Exposure::new(ip(bind))
                };
                let expected = if is_loopback(ip(bind)) {
                    on_loopback
                } else {
                    elsewhere
                };
                let got = match exposure.check_startup() {
                    Result::Ok(w) if w.is_empty() => Ok,
                    Result::Ok(_) => Warn,
                    Err(e) => match e.problems.as_slice() {
                        [ExposureError::NoSigV4OffLoopback { .. }] => NoSigV4,
                        [ExposureError::DevAuthOffLoopback { .. }] => DevAuth,
                        [
                            ExposureError::NoSigV4OffLoopback { .. },
                            ExposureError::DevAuthOffLoopback { .. },
                        ] => Both,
                        other => panic!("unexpected {other:?}"),
                    },
                };
                assert_eq!(
                    got, expected,
                    "bind {bind} sigv4 {sigv4} dev_auth {dev_auth} force {force}"
                );
            }
        }
    }

    #[test]
    fn startup_messages_are_clear() {
        let exposure = Exposure {
            sigv4: false,
            dev_auth: true,
            admin_secret: Some(AdminSecret::from(" ".to_owned())),
            ..Exposure::new(ip("0.0.0.0"))
        };
        let err = exposure.check_startup().unwrap_err();
        assert_eq!(err.problems.len(), 3);
        let text = err.to_string();
        assert!(text.starts_with("refusing to start the local gateway:\n  - --no-sigv4 is refused when binding 0.0.0.0"), "{text}");
        assert!(text.contains("--force-dev-auth"), "{text}");
        assert!(text.contains("admin secret is empty"), "{text}");
        let warned = Exposure {
            dev_auth: true,
            force_dev_auth: true,
            ..Exposure::new(ip("::"))
        };
        let warnings = warned.check_startup().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("?user=NAME"), "{}", warnings[0]);
    }

    #[test]
    fn loopback_and_local_paths() {
        for (addr, expected) in [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:127.3.2.1", true),
            ("0.0.0.0", false),
            ("::", false),
            ("::ffff:10.0.0.1", false),
            ("192.0.2.10", false),
            ("::2", false),
        ] {
            assert_eq!(is_loopback(ip(addr)), expected, "{addr}");
        }
        for path in LOCAL_ENDPOINTS {
            assert!(is_local_only_path(path), "{path}");
        }
        for path in ["/local", "/local/", "/local/console/index.html"] {
            assert!(is_local_only_path(path), "{path}");
        }
        for path in [
            "/",
            "/localhost",
            "/locals/x",
            "/ws/local/x",
            "/@connections/x",
            "/local/.well-known/jwks.json",
            "/local/.well-known/openid-configuration",
        ] {
            assert!(!is_local_only_path(path), "{path}");
        }
    }

    #[test]
    fn bearer_forms() {
        let mut exposure = Exposure::new(ip("0.0.0.0"));
        exposure.admin_secret = Some(AdminSecret::from(SECRET.to_owned()));
        let peer = ip("192.0.2.20");
        for value in [
            format!("Bearer {SECRET}"),
            format!("bearer {SECRET}"),
            format!("  BEARER   {SECRET}  "),
        ] {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
            assert_eq!(
                exposure.local_endpoint_access(peer, &h),
                LocalAccess::Allowed,
                "{value}"
            );
        }
        for value in [
            SECRET.to_owned(),
            format!("Basic {SECRET}"),
            format!("Bearer {SECRET}x"),
            format!("Bearer {}", &SECRET[1..]),
            "Bearer ".to_owned(),
            "Bearer".to_owned(),
        ] {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
            assert!(
                matches!(
                    exposure.local_endpoint_access(peer, &h),
                    LocalAccess::Refused { .. }
                ),
                "{value}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert!(matches!(
            exposure.local_endpoint_access(peer, &h),
            LocalAccess::Refused { .. }
        ));
        // An empty secret never matches, even "Bearer " with trailing spaces.
        exposure.admin_secret = Some(AdminSecret::from(String::new()));
        assert!(matches!(
            exposure.local_endpoint_access(peer, &bearer("")),
            LocalAccess::Refused { .. }
        ));
    }

    #[test]
    fn banner_lines_say_who_gets_what_and_never_the_secret_key() {
        let id = SigV4Identity {
            access_key_id: "AKIDLOCAL",
            region: "us-east-1",
        };
        let local = Exposure::new(ip("127.0.0.1")).banner_lines(8080, Some(id));
        let text = local.join("\n");
        assert!(text.contains("127.0.0.1:8080: this host only"), "{text}");
        assert!(
            text.contains("token, connections, queues, manifest, stats, console: this host"),
            "{text}"
        );
        assert!(
            text.contains(
                "SigV4 required: service execute-api, region us-east-1, access key id AKIDLOCAL"
            ),
            "{text}"
        );
        assert!(!text.contains("admin secret"), "{text}");

        let secret = generate_admin_secret().unwrap();
        let open = Exposure {
            admin_secret: Some(AdminSecret::from(secret.clone())),
            dev_auth: true,
            force_dev_auth: true,
            ..Exposure::new(ip("::"))
        };
        let text = open.banner_lines(9000, Some(id)).join("\n");
        assert!(text.contains("[::]:9000: every interface"), "{text}");
        assert!(
            text.contains("loopback clients, and others with the admin secret"),
            "{text}"
        );
        assert!(text.contains(&format!("admin secret {secret}")), "{text}");
        assert!(text.contains("Authorization: Bearer <secret>"), "{text}");
        assert!(
            text.contains("dev auth     on: ?user=NAME identities for anyone"),
            "{text}"
        );

        let closed = Exposure::new(ip("192.0.2.10"))
            .banner_lines(1, None)
            .join("\n");
        assert!(closed.contains("192.0.2.10:1: this interface"), "{closed}");
        assert!(
            closed.contains("--expose-local-endpoints to open them"),
            "{closed}"
        );
        assert!(closed.contains("no access key configured"), "{closed}");

        let unsigned = Exposure {
            sigv4: false,
            ..Exposure::new(ip("::1"))
        }
        .banner_lines(1, Some(id))
        .join("\n");
        assert!(
            unsigned.contains("unsigned requests accepted (--no-sigv4"),
            "{unsigned}"
        );
        assert!(!unsigned.contains("AKIDLOCAL"), "{unsigned}");
    }

    #[test]
    fn secrets_are_random_url_safe_and_redacted() {
        let a = generate_admin_secret().unwrap();
        let b = generate_admin_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
        let exposure = Exposure {
            admin_secret: Some(AdminSecret::from(a.clone())),
            ..Exposure::new(ip("0.0.0.0"))
        };
        assert!(!format!("{exposure:?}").contains(&a));
    }

    #[test]
    fn secrets_match_is_exact() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
        assert!(!secrets_match("", "a"));
    }
}
