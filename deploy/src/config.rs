//! The stack's configuration (`pulumi config set KEY VALUE`, in the project's namespace).

use crate::DeployError;

/// Every configuration key the program reads, with its meaning (for errors and docs).
pub const KEYS: &[(&str, &str)] = &[
    (
        "app",
        "the app's name in resource names (default: the manifest's)",
    ),
    ("stage", "the stage (default: the stack's name)"),
    (
        "artifact",
        "the Lambda zip (default: target/lambda/<bin>/bootstrap.zip)",
    ),
    (
        "domain",
        "the site's domain name (optional: without it, CloudFront's own)",
    ),
    (
        "hostedZoneId",
        "the Route 53 zone of `domain` (alias records, certificate validation)",
    ),
    (
        "certificateArn",
        "an existing us-east-1 certificate for `domain` (default: one is created)",
    ),
    (
        "allowedCidrs",
        "IPv4 CIDRs allowed (comma-separated; empty: everyone)",
    ),
    ("blockedCidrs", "IPv4 CIDRs blocked (comma-separated)"),
    (
        "rateLimit",
        "requests per IP per 5 minutes before WAF blocks (default 2000)",
    ),
    (
        "throttlingRateLimit",
        "WebSocket stage steady requests/s (default 1000)",
    ),
    (
        "throttlingBurstLimit",
        "WebSocket stage burst (default 500)",
    ),
    (
        "autoConfirmUsers",
        "confirm new Cognito users without a code (default: true unless stage is prod)",
    ),
    ("logRetentionDays", "CloudWatch log retention (default 14)"),
    (
        "manageApiGatewayAccount",
        "set the account's API Gateway CloudWatch role, needed for access logs (default true)",
    ),
];

/// A stage's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackConfig {
    /// The app's name in resource names.
    pub app: String,
    /// The stage.
    pub stage: String,
    /// The AWS region of the stack (`aws:region`).
    pub region: String,
    /// The Lambda artifact (a zip with `bootstrap`).
    pub artifact: String,
    /// The site's domain, if any.
    pub domain: Option<String>,
    /// The Route 53 hosted zone of the domain.
    pub hosted_zone_id: Option<String>,
    /// An existing certificate (us-east-1) for the domain.
    pub certificate_arn: Option<String>,
    /// IPv4 CIDRs allowed (empty: all).
    pub allowed_cidrs: Vec<String>,
    /// IPv4 CIDRs blocked.
    pub blocked_cidrs: Vec<String>,
    /// WAF rate limit: requests per IP per 5 minutes.
    pub rate_limit: u32,
    /// Stage throttling: steady rate (requests/s).
    pub throttling_rate_limit: u32,
    /// Stage throttling: burst.
    pub throttling_burst_limit: u32,
    /// `SWITCHBOARD_AUTO_CONFIRM_USERS` of the pre-sign-up function.
    pub auto_confirm_users: bool,
    /// Log retention in days.
    pub log_retention_days: u32,
    /// Whether the stack sets the account's API Gateway CloudWatch role.
    pub manage_api_gateway_account: bool,
}

impl StackConfig {
    /// Reads the configuration through `get` (project-namespace keys), with the stack's
    /// name, the region and the default artifact path; every problem is reported at once.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        stack: &str,
        region: Option<String>,
        app_default: &str,
        artifact_default: &str,
    ) -> Result<Self, DeployError> {
        let mut problems = Vec::new();
        let non_empty = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut number = |k: &str, default: u32, min: u32, max: u32| match non_empty(k) {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    problems.push(format!("`{k}` must be a whole number from {min} to {max}"));
                    default
                }
            },
        };
        let rate_limit = number("rateLimit", 2000, 100, 2_000_000_000);
        let throttling_rate_limit = number("throttlingRateLimit", 1000, 1, 1_000_000);
        let throttling_burst_limit = number("throttlingBurstLimit", 500, 1, 1_000_000);
        let log_retention_days = number("logRetentionDays", 14, 1, 3653);
        let stage = non_empty("stage").unwrap_or_else(|| stack.to_owned());
        let app = non_empty("app").unwrap_or_else(|| app_default.to_owned());
        for (what, v) in [("app", &app), ("stage", &stage)] {
            let ok = !v.is_empty()
                && v.len() <= 20
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                problems.push(format!(
                    "`{what}` ({v:?}) must be 1-20 lowercase letters, digits or `-` (it is part of every resource name)"
                ));
            }
        }
        let mut flag = |k: &str, default: bool| match non_empty(k).as_deref() {
            None => default,
            Some("true") => true,
            Some("false") => false,
            Some(_) => {
                problems.push(format!("`{k}` must be true or false"));
                default
            }
        };
        let auto_confirm_users = flag("autoConfirmUsers", stage != "prod");
        let manage_api_gateway_account = flag("manageApiGatewayAccount", true);
        let mut cidrs = |k: &str| -> Vec<String> {
            let list: Vec<String> = non_empty(k)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            for c in &list {
                if !is_ipv4_cidr(c) {
                    problems.push(format!("`{k}`: `{c}` is not an IPv4 CIDR (a.b.c.d/n)"));
                }
            }
            list
        };
        let allowed_cidrs = cidrs("allowedCidrs");
        let blocked_cidrs = cidrs("blockedCidrs");
        let domain = non_empty("domain");
        let hosted_zone_id = non_empty("hostedZoneId");
        let certificate_arn = non_empty("certificateArn");
        if domain.is_some() && hosted_zone_id.is_none() && certificate_arn.is_none() {
            problems.push(
                "`domain` needs `hostedZoneId` (to validate a new certificate) or `certificateArn`"
                    .to_owned(),
            );
        }
        if domain.is_none() && (hosted_zone_id.is_some() || certificate_arn.is_some()) {
            problems.push("`hostedZoneId` and `certificateArn` need `domain`".to_owned());
        }
        let region = match region.filter(|r| !r.trim().is_empty()) {
            Some(r) => r,
            None => {
                problems.push("`aws:region` is not set (pulumi config set aws:region ...)".into());
                String::new()
            }
        };
        if !problems.is_empty() {
            return Err(DeployError::Config(problems));
        }
        Ok(Self {
            app,
            stage,
            region,
            artifact: non_empty("artifact").unwrap_or_else(|| artifact_default.to_owned()),
            domain,
            hosted_zone_id,
            certificate_arn,
            allowed_cidrs,
            blocked_cidrs,
            rate_limit,
            throttling_rate_limit,
            throttling_burst_limit,
            auto_confirm_users,
            log_retention_days,
            manage_api_gateway_account,
        })
    }

    /// `{app}-{stage}`, the prefix of every physical name.
    pub fn prefix(&self) -> String {
        format!("{}-{}", self.app, self.stage)
    }
}

fn is_ipv4_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    ip.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|n| n <= 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<StackConfig, DeployError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        StackConfig::from_lookup(
            |k| map.get(k).cloned(),
            "dev",
            Some("eu-west-1".into()),
            "chat",
            "a.zip",
        )
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.prefix(), "chat-dev");
        assert!(c.auto_confirm_users);
        assert_eq!(c.rate_limit, 2000);
        assert!(!cfg(&[("stage", "prod")]).unwrap().auto_confirm_users);
    }

    #[test]
    fn every_problem_at_once() {
        let Err(DeployError::Config(problems)) = cfg(&[
            ("rateLimit", "lots"),
            ("allowedCidrs", "10.0.0.0/8, nope"),
            ("domain", "chat.example.com"),
            ("stage", "Prod!"),
        ]) else {
            panic!("expected a config error");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
