//! Tokens for fuzzing and tests (feature `tokens`): the local issuer over a fixed test
//! key, and a verifier of its tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a broken fixture should fail loudly

use std::sync::OnceLock;

/// The local token issuer over the test key `testing/fixtures/jwt/rsa-a.pem` (no key
/// generation), its issuer `http://127.0.0.1:3000/local`, audience `fuzz-client`.
pub fn issuer() -> &'static switchboard_local::issuer::LocalIssuer {
    static ISSUER: OnceLock<switchboard_local::issuer::LocalIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("switchboard-fuzz-issuer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let key = dir.join(switchboard_local::issuer::KEY_FILE);
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jwt/rsa-a.pem"),
            &key,
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let issuer = switchboard_local::issuer::LocalIssuer::load_or_create(
            &dir,
            "http://127.0.0.1:3000/local",
            "fuzz-client",
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        issuer
    })
}

/// A verifier of the [`issuer`]'s tokens (id tokens, its audience), keys given statically.
pub fn verifier(token_use: switchboard_aws::jwt::TokenUse) -> switchboard_aws::jwt::JwtVerifier {
    let issuer = issuer();
    let config = switchboard_aws::jwt::JwtConfig::new(issuer.issuer())
        .with_audience(issuer.audience())
        .with_token_use(token_use);
    switchboard_aws::jwt::JwtVerifier::with_static_jwks(config, &issuer.jwks().to_string()).unwrap()
}
