//! CloudFront: one distribution for the page (the bucket), `/ws` (the WebSocket API)
//! and `/http` (the HTTP API, if any), behind WAF, with the site's certificate.

use super::edge::Edge;
use super::web::Web;
use super::{
    ALL_VIEWER_EXCEPT_HOST, CACHING_DISABLED, CACHING_OPTIMIZED, Handle, Plan, execute_api_host,
};
use crate::aws::Distribution;
use crate::config::StackConfig;
use crate::input::Input;

/// An API's origin (HTTPS only).
fn api_origin(id: &str, api: Handle, region: &str) -> Input {
    Input::object([
        ("originId", Some(Input::str(id))),
        ("domainName", Some(execute_api_host(api, region))),
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

/// The uncached behaviour of an API's paths.
fn api_behavior(pattern: &str, origin: &str) -> Input {
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
        ("cachedMethods", Some(Input::strs(["GET", "HEAD"]))),
        ("cachePolicyId", Some(Input::str(CACHING_DISABLED))),
        (
            "originRequestPolicyId",
            Some(Input::str(ALL_VIEWER_EXCEPT_HOST)),
        ),
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

/// The distribution.
pub(super) fn distribution(
    p: &mut Plan,
    cfg: &StackConfig,
    prefix: &str,
    web: &Web,
    ws_api: Handle,
    http_api: Option<Handle>,
    edge: &Edge,
) -> Handle {
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
        api_origin("ws", ws_api, region),
    ];
    let mut behaviors = vec![api_behavior("/ws", "ws"), api_behavior("/ws/*", "ws")];
    if let Some(http_api) = http_api {
        origins.push(api_origin("http", http_api, region));
        behaviors.push(api_behavior("/http/*", "http"));
    }
    p.add(
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
    )
}
