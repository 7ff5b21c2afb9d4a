//! Starting the local gateway (or the in-process [`TestGateway`]) from an app's
//! [`AppSpec`]: the authorizer (the local issuer's tokens checked by the same JWT
//! verifier as in Lambda, or the app's own, or the development one), the hub as the
//! `@connections` client, the dispatcher, and the HTTP API.

use std::path::Path;
use std::sync::Arc;

use switchboard_aws::jwt::{JwtAuthorizer, JwtConfig, JwtVerifier, TokenUse};
use switchboard_core::auth::Authorizer;
use switchboard_core::dispatch::Dispatcher;
use switchboard_core::spec::{AppSpec, StartError};

use crate::exposure::{Exposure, StartupRefused};
use crate::http::LocalHttpAuth;
use crate::issuer::{IssuerError, LocalIssuer};
use crate::{Gateway, GatewayError, Hub, LocalConfig, LocalGateway, TestGateway};

/// The audience (`aud`) of the local issuer's id tokens: the local "app client id".
pub const LOCAL_AUDIENCE: &str = "switchboard-local";

/// Why the local gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The app itself is misconfigured.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The address could not be bound.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The local token issuer could not load or create its key.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// The settings would open the gateway to the network unsafely (`--no-sigv4` or
    /// `--dev-auth` off loopback, an empty admin secret).
    #[error(transparent)]
    Exposure(#[from] StartupRefused),
}

/// The exposure policy of `config` for `app`, checked before anything binds: the policy
/// and the warnings to print, or every reason to refuse.
fn exposure(
    app: &AppSpec,
    config: &LocalConfig,
) -> Result<(Exposure, Vec<String>), StartupRefused> {
    let exposure = Exposure {
        bind: config.addr.ip(),
        sigv4: config.sigv4.is_some(),
        admin_secret: config.admin_secret.clone(),
        dev_auth: app.auth.explicit().is_some_and(|a| a.is_development()),
        force_dev_auth: config.force_dev_auth,
    };
    let warnings = exposure.check_startup()?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok((exposure, warnings))
}

/// A local gateway's authorizer, its token issuer when it has one, and how it checks
/// HTTP API requests.
struct Auth {
    authorizer: Arc<dyn Authorizer>,
    issuer: Option<Arc<LocalIssuer>>,
    http: LocalHttpAuth,
}

/// The authorizer of a local gateway at `base_url`, and the local issuer if it has one.
fn authorizer(app: &AppSpec, base_url: &str, state_dir: &Path) -> Result<Auth, LocalError> {
    if let Some(authorizer) = app.auth.explicit() {
        return Ok(Auth {
            http: LocalHttpAuth::Authorizer(Arc::clone(&authorizer)),
            authorizer,
            issuer: None,
        });
    }
    let issuer =
        LocalIssuer::load_or_create(state_dir, format!("{base_url}/local"), LOCAL_AUDIENCE)?;
    // The same verifier as in Lambda; the keys come from the issuer in-process instead
    // of over HTTP.
    let config = JwtConfig::new(issuer.issuer())
        .with_audience(LOCAL_AUDIENCE)
        .with_token_use(TokenUse::Id);
    let verifier = JwtVerifier::with_static_jwks(config, &issuer.jwks().to_string())
        .map_err(|e| StartError::Auth(e.to_string()))?;
    let verifier = Arc::new(verifier);
    Ok(Auth {
        authorizer: Arc::new(JwtAuthorizer::new(Arc::clone(&verifier))),
        issuer: Some(Arc::new(issuer)),
        // The HTTP API's JWT authorizer checks the same tokens.
        http: LocalHttpAuth::Jwt(verifier),
    })
}

/// The gateway's shared state: services sending through the hub, the manifest, the page.
pub(crate) fn gateway(
    app: &AppSpec,
    config: LocalConfig,
    authorizer: Arc<dyn Authorizer>,
) -> Result<Arc<Gateway>, StartError> {
    let hub = Arc::new(Hub::default());
    let services = app.services(hub.clone())?;
    let manifest = app
        .manifest_of(services.selection.expression(), &services.registry)?
        .to_json_pretty();
    let mut gateway = Gateway::new(
        Dispatcher::new(services),
        hub,
        authorizer,
        config,
        app.web_page,
        manifest,
    );
    gateway.web_assets = app.web_assets.clone();
    gateway.contract = crate::console::contract_json(app, &gateway);
    Ok(Arc::new(gateway))
}

/// Starts the local gateway for `app` on `config.addr` (tokio runtime required).
pub async fn serve(app: AppSpec, config: LocalConfig) -> Result<LocalGateway, LocalError> {
    let exposure = exposure(&app, &config)?;
    let listener = crate::listen(config.addr)?;
    let base_url = format!("http://{}", listener.addr());
    let auth = authorizer(&app, &base_url, &config.state_dir)?;
    let gateway = gateway(&app, config, auth.authorizer)?;
    let http = app.http.clone().map(|router| {
        crate::http::local_service(
            router,
            Arc::clone(gateway.dispatcher.services()),
            auth.http,
            gateway.api_id.clone(),
        )
    });
    Ok(LocalGateway::start(
        gateway,
        listener,
        auth.issuer,
        http,
        exposure,
    )?)
}

/// An in-process gateway for `app`: no sockets, same authorizer, dispatch and
/// bookkeeping. With the local issuer (the default), [`TestGateway::connect`] signs in
/// with a real token; its key lives in the system's temporary directory.
pub fn test_gateway(app: AppSpec) -> Result<TestGateway, LocalError> {
    let state_dir = std::env::temp_dir().join("switchboard-test-issuer");
    let auth = authorizer(&app, "http://test.invalid", &state_dir)?;
    Ok(TestGateway::new(
        gateway(&app, LocalConfig::default(), auth.authorizer)?,
        auth.issuer,
    ))
}
