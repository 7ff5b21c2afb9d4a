//! CloudFront: one distribution for the page (the bucket), `/ws` (the WebSocket API)
//! and `/http` (the HTTP API, if any), behind WAF, with the site's certificate.
//!
//! # No back door around CloudFront
//!
//! API Gateway v2 APIs cannot sit behind WAF themselves (WAF attaches to REST APIs,
//! not to HTTP or WebSocket APIs), and an API custom domain with
//! `disableExecuteApiEndpoint` only moves the public endpoint to another public name.
//! So every API origin carries a secret header, [`ORIGIN`] = the stack's
//! `originSecret` (a Pulumi secret), which CloudFront adds to each request it forwards
//! (overwriting a viewer's header of that name). The `$connect` authorizer — the only
//! way onto the WebSocket API — and the `http` function — the only integration of the
//! HTTP API — get the accepted secret(s) in `SWITCHBOARD_ORIGIN_SECRET` (and
//! `…_PREVIOUS` during a rotation) and refuse a request without a match. The
//! distribution is registered after those functions, so a rotation updates them
//! before CloudFront sends the new value.

use super::edge::Edge;
use super::web::Web;
use super::{CACHING_DISABLED, CACHING_OPTIMIZED, Handle, Plan, execute_api_host, physical};
use crate::aws::{Distribution, OriginRequestPolicy};
use crate::config::StackConfig;
use crate::input::Input;
use switchboard_core::names::headers::ORIGIN;

/// What the distribution serves and who checks its origin header.
pub(super) struct Origins<'a> {
    /// The page's bucket.
    pub(super) web: &'a Web,
    /// The WebSocket API.
    pub(super) ws_api: Handle,
    /// The HTTP API, if any.
    pub(super) http_api: Option<Handle>,
    /// The functions that check the origin header (registered before CloudFront).
    pub(super) checkers: Vec<Handle>,
}

/// An API's origin (HTTPS only), with the origin secret header.
fn api_origin(id: &str, api: Handle, region: &str, secret: &Input) -> Input {
    Input::object([
        ("originId", Some(Input::str(id))),
        ("domainName", Some(execute_api_host(api, region))),
        (
            "customHeaders",
            Some(Input::List(vec![Input::object([
                ("name", Some(Input::str(ORIGIN))),
                ("value", Some(secret.clone())),
            ])])),
        ),
        (
            "customOriginConfig",
            Some(Input::object([
                ("httpPort", Some(Input::from(80u32))),
                ("httpsPort", Some(Input::from(443u32))),
                ("originProtocolPolicy", Some(Input::str("https-only"))),
                ("originSslProtocols", Some(Input::strs(["TLSv1.2"]))),
                ("originReadTimeout", Some(Input::from(60u32))),
                ("originKeepaliveTimeout", Some(Input::from(60u32))),
            ])),
        ),
    ])
}

/// The origin request policy of the APIs: every viewer header but `Host` (API
/// Gateway routes on its own host name), every query string (tokens), no cookies.
fn origin_request_policy(p: &mut Plan, prefix: &str) -> Handle {
    p.add(
        "apis",
        OriginRequestPolicy {
            name: physical(prefix, "apis", 128),
            comment: "Switchboard APIs: all headers but Host, all query strings, no cookies"
                .to_owned(),
            headers_config: Input::object([
                ("headerBehavior", Some(Input::str("allExcept"))),
                (
                    "headers",
                    Some(Input::object([("items", Some(Input::strs(["host"])))])),
                ),
            ]),
            cookies_config: Input::object([("cookieBehavior", Some(Input::str("none")))]),
            query_strings_config: Input::object([("queryStringBehavior", Some(Input::str("all")))]),
        },
    )
}

/// The uncached behaviour of an API's paths (`OPTIONS` among the cached methods on
/// `/http/*`, as in the reference design).
fn api_behavior(pattern: &str, origin: &str, policy: Handle) -> Input {
    let cached: &[&str] = if origin == "http" {
        &["GET", "HEAD", "OPTIONS"]
    } else {
        &["GET", "HEAD"]
    };
    Input::object([
        ("pathPattern", Some(Input::str(pattern))),
        ("targetOriginId", Some(Input::str(origin))),
        (
            "viewerProtocolPolicy",
            Some(Input::str("redirect-to-https")),
        ),
        (
            "allowedMethods",
            Some(Input::strs([
                "GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE",
            ])),
        ),
        ("cachedMethods", Some(Input::strs(cached.iter().copied()))),
        ("cachePolicyId", Some(Input::str(CACHING_DISABLED))),
        ("originRequestPolicyId", Some(policy.id())),
        ("compress", Some(Input::Bool(false))),
    ])
}

/// The certificate CloudFront serves: the site's, or CloudFront's own.
fn viewer_certificate(certificate_arn: Option<&Input>) -> Input {
    match certificate_arn {
        Some(arn) => Input::object([
            ("acmCertificateArn", Some(arn.clone())),
            ("sslSupportMethod", Some(Input::str("sni-only"))),
            ("minimumProtocolVersion", Some(Input::str("TLSv1.2_2021"))),
        ]),
        None => Input::object([
            ("cloudfrontDefaultCertificate", Some(Input::Bool(true))),
            ("minimumProtocolVersion", Some(Input::str("TLSv1.2_2021"))),
        ]),
    }
}

/// The APIs' origin request policy, then the distribution.
pub(super) fn distribution(
    p: &mut Plan,
    cfg: &StackConfig,
    prefix: &str,
    o: &Origins<'_>,
    edge: &Edge,
) -> Handle {
    let (web, ws_api, http_api) = (o.web, o.ws_api, o.http_api);
    let policy = origin_request_policy(p, prefix);
    let secret = Input::Secret(Box::new(Input::str(cfg.origin_secret.0.clone())));
    let region = cfg.region.as_str();
    let mut origins = vec![
        Input::object([
            ("originId", Some(Input::str("web"))),
            (
                "domainName",
                Some(web.bucket.out("bucketRegionalDomainName")),
            ),
            ("originAccessControlId", Some(web.oac.id())),
        ]),
        api_origin("ws", ws_api, region, &secret),
    ];
    let mut behaviors = vec![
        api_behavior("/ws", "ws", policy),
        api_behavior("/ws/*", "ws", policy),
    ];
    if let Some(http_api) = http_api {
        origins.push(api_origin("http", http_api, region, &secret));
        behaviors.push(api_behavior("/http/*", "http", policy));
    }
    p.add_with(
        "site",
        Distribution {
            enabled: true,
            comment: format!("{prefix}: page, /ws, /http"),
            is_ipv6_enabled: true,
            http_version: "http2and3",
            price_class: "PriceClass_100",
            default_root_object: "index.html",
            aliases: cfg
                .domain
                .as_ref()
                .filter(|_| edge.certificate_arn.is_some())
                .map(|d| vec![Input::str(d.clone())]),
            origins,
            default_cache_behavior: Input::object([
                ("targetOriginId", Some(Input::str("web"))),
                (
                    "viewerProtocolPolicy",
                    Some(Input::str("redirect-to-https")),
                ),
                ("allowedMethods", Some(Input::strs(["GET", "HEAD"]))),
                ("cachedMethods", Some(Input::strs(["GET", "HEAD"]))),
                ("cachePolicyId", Some(Input::str(CACHING_OPTIMIZED))),
                ("compress", Some(Input::Bool(true))),
            ]),
            ordered_cache_behaviors: behaviors,
            restrictions: Input::object([(
                "geoRestriction",
                Some(Input::object([(
                    "restrictionType",
                    Some(Input::str("none")),
                )])),
            )]),
            viewer_certificate: viewer_certificate(edge.certificate_arn.as_ref()),
            web_acl_id: edge.acl.out("arn"),
        },
        None,
        o.checkers.clone(),
    )
}
