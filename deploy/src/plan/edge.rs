//! What CloudFront needs in us-east-1 and around it: the us-east-1 provider, WAF (IP
//! sets, a rate limit, the optional allow list), the site's certificate (validated
//! through Route 53, unless an existing one is configured) and the site's DNS records.

use super::{Handle, Plan, physical};
use crate::aws::{
    Certificate, CertificateValidation, DnsRecord, Extra, Provider, WafIpSet, WafWebAcl,
};
use crate::config::StackConfig;
use crate::input::Input;

/// The us-east-1 provider: CloudFront's certificate and WAF live there. It inherits
/// the stack's `aws:*` settings (profile, assumed roles, credentials as secrets, ...),
/// which an explicit provider does not read by itself.
pub(super) fn us_east_1_provider(p: &mut Plan, cfg: &StackConfig) -> Handle {
    let inherited = cfg
        .aws_settings
        .iter()
        .map(|(k, s)| {
            let value = json_input(&s.value);
            let value = if s.secret {
                Input::Secret(Box::new(value))
            } else {
                value
            };
            (k.clone(), value)
        })
        .collect();
    p.add(
        "us-east-1",
        Provider {
            region: "us-east-1".into(),
            inherited: Extra(inherited),
        },
    )
}

/// A JSON value as an input.
fn json_input(v: &serde_json::Value) -> Input {
    use serde_json::Value;
    match v {
        Value::Bool(b) => Input::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Input::str(n.to_string()), Input::Int),
        Value::String(s) => Input::str(s.clone()),
        Value::Array(items) => Input::List(items.iter().map(json_input).collect()),
        Value::Object(map) => {
            Input::object(map.iter().map(|(k, v)| (k.clone(), Some(json_input(v)))))
        }
        Value::Null => Input::str(""),
    }
}

/// What the distribution is protected and named with.
pub(super) struct Edge {
    /// The WAF web ACL.
    pub(super) acl: Handle,
    /// The site's certificate, if it has a domain.
    pub(super) certificate_arn: Option<Input>,
}

/// WAF, then the certificate.
pub(super) fn edge(p: &mut Plan, cfg: &StackConfig, prefix: &str, us_east_1: Handle) -> Edge {
    let acl = waf(p, cfg, prefix, us_east_1);
    let certificate_arn = certificate(p, cfg, us_east_1);
    Edge {
        acl,
        certificate_arn,
    }
}

/// A rule's (or the ACL's) CloudWatch metrics and samples.
fn visibility(metric: &str) -> Input {
    Input::object([
        ("cloudwatchMetricsEnabled", Some(Input::Bool(true))),
        ("metricName", Some(Input::str(metric))),
        ("sampledRequestsEnabled", Some(Input::Bool(true))),
    ])
}

/// A WAF action (`block`, `allow`).
fn action(a: &str) -> Input {
    Input::object([(a, Some(Input::object::<&str>([])))])
}

/// An IPv4 set (scope CLOUDFRONT, us-east-1).
fn ip_set(p: &mut Plan, prefix: &str, us_east_1: Handle, which: &str, cidrs: &[String]) -> Handle {
    p.add_with(
        which.to_owned(),
        WafIpSet {
            name: physical(prefix, which, 128),
            scope: "CLOUDFRONT",
            ip_address_version: "IPV4",
            addresses: cidrs.iter().map(|c| Input::str(c.clone())).collect(),
        },
        Some(us_east_1),
        Vec::new(),
    )
}

/// A rule applying `act` to the addresses of `set`.
fn ip_rule(name: &str, priority: u32, act: &str, set: Handle) -> Input {
    Input::object([
        ("name", Some(Input::str(name))),
        ("priority", Some(Input::from(priority))),
        ("action", Some(action(act))),
        (
            "statement",
            Some(Input::object([(
                "ipSetReferenceStatement",
                Some(Input::object([("arn", Some(set.out("arn")))])),
            )])),
        ),
        ("visibilityConfig", Some(visibility(name))),
    ])
}

/// The rule blocking an IP over `limit` requests per 5 minutes.
fn rate_rule(limit: u32) -> Input {
    Input::object([
        ("name", Some(Input::str("rate-limit"))),
        ("priority", Some(Input::from(1u32))),
        ("action", Some(action("block"))),
        (
            "statement",
            Some(Input::object([(
                "rateBasedStatement",
                Some(Input::object([
                    ("limit", Some(Input::from(limit))),
                    ("aggregateKeyType", Some(Input::str("IP"))),
                ])),
            )])),
        ),
        ("visibilityConfig", Some(visibility("rate-limit"))),
    ])
}

/// The web ACL (us-east-1, scope CLOUDFRONT) and its IP sets: blocked addresses, the
/// rate limit, and with an allow list, everyone else blocked.
fn waf(p: &mut Plan, cfg: &StackConfig, prefix: &str, us_east_1: Handle) -> Handle {
    let blocked = ip_set(p, prefix, us_east_1, "blocked", &cfg.blocked_cidrs);
    let allowed = ip_set(p, prefix, us_east_1, "allowed", &cfg.allowed_cidrs);
    let mut rules = vec![
        ip_rule("blocked-ips", 0, "block", blocked),
        rate_rule(cfg.rate_limit),
    ];
    let allow_list = !cfg.allowed_cidrs.is_empty();
    if allow_list {
        rules.push(ip_rule("allowed-ips", 2, "allow", allowed));
    }
    p.add_with(
        "web",
        WafWebAcl {
            name: physical(prefix, "web", 128),
            scope: "CLOUDFRONT",
            default_action: action(if allow_list { "block" } else { "allow" }),
            rules,
            visibility_config: visibility(&physical(prefix, "web", 128)),
        },
        Some(us_east_1),
        Vec::new(),
    )
}

/// The site's certificate ARN: the configured one, or a new one (us-east-1) validated
/// through Route 53; none without a domain.
fn certificate(p: &mut Plan, cfg: &StackConfig, us_east_1: Handle) -> Option<Input> {
    match (&cfg.domain, &cfg.certificate_arn, &cfg.hosted_zone_id) {
        (Some(_), Some(arn), _) => Some(Input::str(arn.clone())),
        (Some(domain), None, Some(zone)) => {
            let cert = p.add_with(
                "site",
                Certificate {
                    domain_name: domain.clone(),
                    validation_method: "DNS",
                },
                Some(us_east_1),
                Vec::new(),
            );
            let option = |f: &str| cert.out(&format!("domainValidationOptions.0.{f}"));
            let record = p.add(
                "site-validation",
                DnsRecord {
                    zone_id: zone.clone(),
                    name: option("resourceRecordName"),
                    record_type: option("resourceRecordType"),
                    ttl: Some(300),
                    records: Some(vec![option("resourceRecordValue")]),
                    aliases: None,
                    allow_overwrite: Some(true),
                },
            );
            let validation = p.add_with(
                "site",
                CertificateValidation {
                    certificate_arn: cert.out("arn"),
                    validation_record_fqdns: vec![record.out("fqdn")],
                },
                Some(us_east_1),
                Vec::new(),
            );
            Some(validation.out("certificateArn"))
        }
        _ => None,
    }
}

/// The domain's A and AAAA alias records to the distribution (with a hosted zone).
pub(super) fn dns_records(p: &mut Plan, cfg: &StackConfig, distribution: Handle) {
    if let (Some(domain), Some(zone)) = (&cfg.domain, &cfg.hosted_zone_id) {
        for kind in ["A", "AAAA"] {
            p.add(
                format!("site-{kind}"),
                DnsRecord {
                    zone_id: zone.clone(),
                    name: Input::str(domain.clone()),
                    record_type: Input::str(kind),
                    ttl: None,
                    records: None,
                    aliases: Some(vec![Input::object([
                        ("name", Some(distribution.out("domainName"))),
                        ("zoneId", Some(distribution.out("hostedZoneId"))),
                        ("evaluateTargetHealth", Some(Input::Bool(false))),
                    ])]),
                    allow_overwrite: None,
                },
            );
        }
    }
}
