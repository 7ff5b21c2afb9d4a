//! The transport-independent part of the local gateway: what happens on upgrade, on each
//! message and on close. The socket server and the in-process test gateway share it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use aws_lambda_events::apigw::{
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::query_map::QueryMap;
use http::HeaderMap;
use tokio::sync::mpsc;

use super::LocalConfig;
use super::hub::{CloseSignal, Hub, Live};
use switchboard_core::auth::{self, Authorizer, AuthorizerApi, AuthorizerInput, Refused};
use switchboard_core::dispatch::Dispatcher;
use switchboard_core::ids::{new_api_id, new_id};
use switchboard_core::response::Frame;

/// What the gateway knows of an upgrade request.
#[derive(Debug, Default)]
pub(crate) struct UpgradeRequest {
    pub(crate) headers: HeaderMap,
    pub(crate) query: String,
    pub(crate) source_ip: Option<String>,
    pub(crate) path: String,
}

/// An upgrade refused: the HTTP status and body API Gateway would answer.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// An accepted connection: register it, then pump `rx` to the client.
pub(crate) struct Opened {
    pub(crate) live: Arc<Live>,
    pub(crate) rx: mpsc::Receiver<Frame>,
    pub(crate) protocol: Option<String>,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `requestContext.requestTime` (`22/Nov/2026:07:42:55 +0000`). It changes once a
/// second, and formatting it is the costliest part of building an event, so each thread
/// keeps the last second's string.
fn request_time(epoch_ms: i64) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let second = epoch_ms.div_euclid(1000);
    let format = || {
        chrono::DateTime::from_timestamp_millis(epoch_ms)
            .unwrap_or_default()
            .format("%d/%b/%Y:%H:%M:%S %z")
            .to_string()
    };
    LAST.with(|last| match last.try_borrow_mut() {
        Ok(mut last) => {
            if last.0 != second {
                *last = (second, format());
            }
            last.1.clone()
        }
        Err(_) => format(),
    })
}

/// The local gateway's state.
pub(crate) struct Gateway {
    pub(crate) dispatcher: Dispatcher,
    pub(crate) hub: Arc<Hub>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) config: LocalConfig,
    pub(crate) api_id: String,
    pub(crate) web_page: Option<&'static str>,
    /// Static files served next to the page (`App::web_asset`).
    pub(crate) web_assets: Vec<switchboard_core::spec::WebAsset>,
    pub(crate) manifest: String,
    /// The routes' payload schemas for the console's send form (`null` when unknown).
    pub(crate) contract: serde_json::Value,
    /// The console's live feed and charts.
    pub(crate) console: crate::console::Feed,
    /// API keys, the usage plan, route throttles.
    pub(crate) limits: crate::limits::Limits,
    domain: OnceLock<String>,
    closing: AtomicUsize,
}

impl Gateway {
    pub(crate) fn new(
        dispatcher: Dispatcher,
        hub: Arc<Hub>,
        authorizer: Arc<dyn Authorizer>,
        config: LocalConfig,
        web_page: Option<&'static str>,
        manifest: String,
    ) -> Self {
        let routes = dispatcher
            .services()
            .registry
            .routes()
            .iter()
            .map(|r| r.def.key)
            .chain(["$default"]);
        let console = crate::console::Feed::new(routes);
        let limits = crate::limits::Limits::new(
            &dispatcher.services().registry,
            &config.api_keys,
            &config.usage_plan,
            config.clock.clone(),
        );
        Self {
            limits,
            dispatcher,
            hub,
            authorizer,
            config,
            api_id: new_api_id(),
            web_page,
            web_assets: Vec::new(),
            manifest,
            contract: serde_json::Value::Null,
            console,
            domain: OnceLock::new(),
            closing: AtomicUsize::new(0),
        }
    }

    pub(crate) fn set_domain(&self, addr: SocketAddr) {
        let _ = self.domain.set(addr.to_string());
    }

    fn domain(&self) -> &str {
        self.domain.get().map(String::as_str).unwrap_or("localhost")
    }

    /// Connections closing: handshake or `$disconnect` still running.
    pub(crate) fn closing(&self) -> usize {
        self.closing.load(Ordering::Relaxed)
    }

    /// Counts a connection as closing until the guard drops, so a graceful shutdown waits
    /// for its close handshake and `$disconnect`.
    pub(crate) fn closing_guard(self: &Arc<Self>) -> ClosingGuard {
        self.closing.fetch_add(1, Ordering::Relaxed);
        ClosingGuard(Arc::clone(self))
    }

    fn method_arn(&self) -> String {
        auth::method_arn("local", "000000000000", &self.api_id, &self.config.stage)
    }

    fn base_context(
        &self,
        connection_id: &str,
        connected_at: i64,
    ) -> ApiGatewayWebsocketProxyRequestContext {
        let now = now_ms();
        let mut rc = ApiGatewayWebsocketProxyRequestContext::default();
        rc.connection_id = Some(connection_id.to_owned());
        rc.connected_at = connected_at;
        rc.request_time_epoch = now;
        rc.request_time = Some(request_time(now));
        rc.domain_name = Some(self.domain().to_owned());
        rc.stage = Some(self.config.stage.clone());
        rc.apiid = Some(self.api_id.clone());
        rc.account_id = Some("000000000000".to_owned());
        let request_id = new_id();
        rc.extended_request_id = Some(request_id.clone());
        rc.request_id = Some(request_id);
        rc.message_direction = Some("IN".to_owned());
        rc
    }

    /// The origin check ([`LocalConfig::origin_secrets`]): `Some(403)` when the headers
    /// lack an accepted secret.
    pub(crate) fn refuse_origin(&self, headers: &HeaderMap) -> Option<Refusal> {
        let secrets = self.config.origin_secrets.as_ref()?;
        if secrets.allows(headers) {
            return None;
        }
        self.limits.counters.origin_refused();
        Some(refuse(403, "Forbidden"))
    }

    /// What API Gateway checks before the authorizer ([`crate::limits`]): the origin
    /// header, the API key, the key's usage plan and `$connect`'s throttle.
    fn admit_upgrade(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Arc<crate::limits::KeyLimits>>, Refusal> {
        if let Some(refused) = self.refuse_origin(headers) {
            return Err(refused);
        }
        let given = headers
            .get(switchboard_core::names::headers::API_KEY)
            .map(|v| v.as_bytes());
        let Ok(key) = self.limits.key_for(given) else {
            self.limits.counters.api_key_refused();
            return Err(refuse(403, "Forbidden"));
        };
        self.limits
            .admit(key.as_deref(), "$connect")
            .map_err(|why| refuse(429, why.message()))?;
        Ok(key)
    }

    /// Asks the authorizer about an upgrade, as API Gateway does, and counts its
    /// decision (`AuthorizerAllow` / `AuthorizerDeny`).
    async fn authorize(
        &self,
        upgrade: &UpgradeRequest,
        query_map: &QueryMap,
    ) -> Result<switchboard_core::identity::Identity, Refusal> {
        let areq = AuthorizerInput {
            api: AuthorizerApi::WebSocket {
                request_id: new_id(),
                source_ip: upgrade.source_ip.clone(),
            },
            method_arn: self.method_arn(),
            api_id: self.api_id.clone(),
            stage: self.config.stage.clone(),
            path: upgrade.path.clone(),
            headers: upgrade.headers.clone(),
            query: query_map.clone(),
        }
        .into_request();
        let decision = auth::authorize(self.authorizer.as_ref(), &areq).await;
        let metrics = &self.dispatcher.services().metrics;
        match &decision {
            Ok(_) => metrics.authorizer(true),
            Err(Refused::Forbidden | Refused::Unauthorized) => metrics.authorizer(false),
            Err(Refused::Failed) => {}
        }
        decision.map_err(|refused| {
            let message = match refused {
                Refused::Unauthorized => "Unauthorized",
                Refused::Forbidden => "Forbidden",
                Refused::Failed => "Internal server error",
            };
            refuse(refused.status(), message)
        })
    }

    /// `$connect`: the checks before the authorizer, the authorizer, then the
    /// `$connect` route. Registers the connection when all accept.
    pub(crate) async fn open(&self, upgrade: UpgradeRequest) -> Result<Opened, Refusal> {
        let key = self.admit_upgrade(&upgrade.headers)?;
        let connection_id = new_id();
        let connected_at = now_ms();
        let query: HashMap<String, String> = auth::single_values(&upgrade.query);
        let query_map = QueryMap::from(query.clone());
        let user_agent = upgrade
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        // 1. The REQUEST authorizer, with what API Gateway sends it.
        let identity = self.authorize(&upgrade, &query_map).await?;

        // 2. The $connect route: headers and query string reach this event only.
        let authorizer_fields = identity.to_authorizer();
        let mut rc = self.base_context(&connection_id, connected_at);
        rc.route_key = Some("$connect".to_owned());
        rc.event_type = Some("CONNECT".to_owned());
        rc.identity.source_ip = upgrade.source_ip.clone();
        rc.identity.user_agent = user_agent.clone();
        rc.authorizer.fields = authorizer_fields.clone();
        let mut event = ApiGatewayWebsocketProxyRequest::default();
        event.headers = upgrade.headers;
        event.query_string_parameters = query_map;
        event.request_context = rc;
        event.is_base64_encoded = false;
        let outcome = match tokio::time::timeout(
            self.config.integration_timeout,
            self.dispatcher.dispatch(event),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => return Err(refuse(504, "Endpoint request timed out")),
        };
        if !outcome.is_success() {
            let message = outcome
                .error
                .as_ref()
                .map(|e| e.message().to_owned())
                .unwrap_or_else(|| "Forbidden".to_owned());
            return Err(refuse(outcome.status, &message));
        }
        let protocol = outcome
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
            .map(|(_, v)| v.clone());

        let (tx, rx) = mpsc::channel(self.config.outbound_buffer.max(1));
        let live = Arc::new(Live {
            id: connection_id,
            tx,
            close: CloseSignal::default(),
            connected_at,
            last_active: AtomicI64::new(connected_at),
            source_ip: upgrade.source_ip,
            user_agent,
            identity,
            authorizer_fields,
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            key,
        });
        self.hub.insert(Arc::clone(&live));
        self.hub.stats.connected();
        self.console.connected(&live, &upgrade.query);
        Ok(Opened { live, rx, protocol })
    }

    /// A text message from the client: route selection, dispatch, and the route response.
    pub(crate) fn on_message(
        self: &Arc<Self>,
        live: &Arc<Live>,
        text: String,
    ) -> impl Future<Output = Option<Frame>> + Send + 'static {
        let gateway = Arc::clone(self);
        let live = Arc::clone(live);
        async move {
            let route = gateway.dispatcher.route_for(&text);
            if let Err(why) = gateway.limits.admit(live.key.as_deref(), route) {
                // API Gateway's answer to a throttled message; the connection stays.
                return Frame::json(&serde_json::json!({
                    "message": why.message(),
                    "connectionId": live.id,
                    "requestId": new_id(),
                }))
                .ok();
            }
            let mut rc = gateway.base_context(&live.id, live.connected_at);
            rc.route_key = Some(route.to_owned());
            rc.event_type = Some("MESSAGE".to_owned());
            rc.message_id = Some(new_id());
            rc.identity.source_ip = live.source_ip.clone();
            rc.identity.user_agent = live.user_agent.clone();
            rc.authorizer.fields = live.authorizer_fields.clone();
            let request_id = rc.request_id.clone().unwrap_or_default();
            // A copy for the console only when one is listening and has room.
            let payload = gateway.console.wants().then(|| text.clone());
            let mut event = ApiGatewayWebsocketProxyRequest::default();
            event.request_context = rc;
            event.body = Some(text);
            let started = std::time::Instant::now();
            match tokio::time::timeout(
                gateway.config.integration_timeout,
                gateway.dispatcher.dispatch(event),
            )
            .await
            {
                Ok(outcome) => {
                    let latency = started.elapsed();
                    let payload = payload.as_deref();
                    gateway
                        .console
                        .message(&live, route, latency, &outcome, payload);
                    outcome.body
                }
                Err(_) => {
                    let timed_out = started.elapsed();
                    gateway.console.metrics.record(route, timed_out, true);
                    Frame::json(&serde_json::json!({
                    "message": "Endpoint request timed out",
                    "connectionId": live.id,
                    "requestId": request_id,
                    }))
                    .ok()
                }
            }
        }
    }

    /// The connection is closed: forget it and run `$disconnect`.
    pub(crate) async fn on_close(&self, live: &Live, code: u16, reason: &str) {
        self.closing.fetch_add(1, Ordering::Relaxed);
        self.hub.remove(&live.id);
        let mut rc = self.base_context(&live.id, live.connected_at);
        rc.route_key = Some("$disconnect".to_owned());
        rc.event_type = Some("DISCONNECT".to_owned());
        rc.identity.source_ip = live.source_ip.clone();
        rc.identity.user_agent = live.user_agent.clone();
        rc.authorizer.fields = live.authorizer_fields.clone();
        rc.disconnect_status_code = Some(i64::from(code));
        rc.disconnect_reason = Some(reason.to_owned());
        let mut event = ApiGatewayWebsocketProxyRequest::default();
        event.request_context = rc;
        let outcome = self.dispatcher.dispatch(event).await;
        self.hub.stats.disconnected();
        self.console.closed(live, code, reason);
        if let Some(err) = outcome.error {
            tracing::warn!(connection_id = %live.id, error = %err, "$disconnect failed");
        }
        tracing::debug!(connection_id = %live.id, code, reason, "disconnected");
        self.closing.fetch_sub(1, Ordering::Relaxed);
    }
}

/// See [`Gateway::closing_guard`].
pub(crate) struct ClosingGuard(Arc<Gateway>);

impl Drop for ClosingGuard {
    fn drop(&mut self) {
        self.0.closing.fetch_sub(1, Ordering::Relaxed);
    }
}

fn refuse(status: u16, message: &str) -> Refusal {
    Refusal {
        status,
        body: serde_json::json!({ "message": message }).to_string(),
    }
}
