//! The stack's configuration (`pulumi config set KEY VALUE`, in the project's namespace).

use std::collections::BTreeMap;

use crate::DeployError;

/// The shortest origin secret accepted (characters).
pub const MIN_ORIGIN_SECRET_LEN: usize = 32;

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
    (
        "originSecret",
        "required, a secret (`pulumi config set --secret`): the value CloudFront sends in `x-switchboard-origin`, which the authorizer and the `http` function require (32+ visible ASCII characters)",
    ),
    (
        "originSecretPrevious",
        "a secret: the previous origin secret, still accepted during a rotation",
    ),
    (
        "alarmEmail",
        "an address subscribed to the alarm topic (optional)",
    ),
    (
        "apiKeys",
        "names of API keys to create in the usage plan (comma-separated; with routes that need a key)",
    ),
    (
        "usagePlanRateLimit",
        "per-key steady requests/s (default 100)",
    ),
    ("usagePlanBurstLimit", "per-key burst (default 200)"),
    (
        "usagePlanQuota",
        "per-key requests per `usagePlanQuotaPeriod` (default 100000; 0: no quota)",
    ),
    ("usagePlanQuotaPeriod", "DAY, WEEK or MONTH (default DAY)"),
    (
        "latencyAlarmMs",
        "integration latency (p99, ms) that raises the latency alarms (default 5000)",
    ),
    (
        "authorizerDenyAlarmPercent",
        "share of denied upgrades (%) that raises the authorizer alarm (default 50)",
    ),
    (
        "fanoutConcurrency",
        "reserved concurrency of the sharded fan-out function (default 10)",
    ),
    (
        "fanoutRate",
        "@connections posts/s the fan-out may make in all, split over its concurrency (default 0: no budget)",
    ),
];

/// The keys that must be Pulumi secrets (`pulumi config set --secret`).
pub const SECRET_KEYS: &[&str] = &["originSecret", "originSecretPrevious"];

/// A configuration value as the engine passes it to the program (`PULUMI_CONFIG`,
/// decrypted): how the program reads secret keys, which Gestalt only hands out as
/// outputs. `namespace` `None` is the project's.
pub fn engine_config(namespace: Option<&str>, key: &str) -> Option<String> {
    let ns = match namespace {
        Some(n) => n.to_owned(),
        None => std::env::var("PULUMI_PROJECT").ok()?,
    };
    let all: BTreeMap<String, String> =
        serde_json::from_str(&std::env::var("PULUMI_CONFIG").ok()?).ok()?;
    all.get(&format!("{ns}:{key}")).cloned()
}

/// Problems for the [`SECRET_KEYS`] set in plain text (`PULUMI_CONFIG_SECRET_KEYS`
/// lists the secret ones): the state and `pulumi config` would show them.
pub fn plaintext_secrets(project: &str) -> Vec<String> {
    let secret: Vec<String> = std::env::var("PULUMI_CONFIG_SECRET_KEYS")
        .ok()
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    SECRET_KEYS
        .iter()
        .filter(|k| {
            engine_config(Some(project), k).is_some_and(|v| !v.is_empty())
                && !secret.contains(&format!("{project}:{k}"))
        })
        .map(|k| {
            format!(
                "`{k}` is set in plain text: set it again with `pulumi config set --secret {k} ...`"
            )
        })
        .collect()
}

/// A secret configuration value: never printed (`Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The usage plan every API key is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsagePlanConfig {
    /// Per-key steady rate, requests/s.
    pub rate_limit: u32,
    /// Per-key burst.
    pub burst_limit: u32,
    /// Per-key requests per period; 0: no quota.
    pub quota: u32,
    /// `DAY`, `WEEK` or `MONTH`.
    pub quota_period: String,
}

/// A setting of the stack's default AWS provider (`aws:<key>`), passed on to the
/// explicit us-east-1 provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderSetting {
    /// Its value (JSON for lists, objects, booleans and numbers).
    pub value: serde_json::Value,
    /// Whether it is a credential (sent as a secret).
    pub secret: bool,
}

/// The `aws:*` keys the us-east-1 provider inherits, and whether each is a JSON value
/// (list, object, boolean, number) rather than a string, and a credential.
pub const INHERITED_AWS_KEYS: &[(&str, bool, bool)] = &[
    ("profile", false, false),
    ("accessKey", false, true),
    ("secretKey", false, true),
    ("token", false, true),
    ("assumeRoles", true, false),
    ("assumeRoleWithWebIdentity", true, false),
    ("sharedConfigFiles", true, false),
    ("sharedCredentialsFiles", true, false),
    ("allowedAccountIds", true, false),
    ("forbiddenAccountIds", true, false),
    ("defaultTags", true, false),
    ("ignoreTags", true, false),
    ("endpoints", true, false),
    ("customCaBundle", false, false),
    ("ec2MetadataServiceEndpoint", false, false),
    ("ec2MetadataServiceEndpointMode", false, false),
    ("httpProxy", false, false),
    ("httpsProxy", false, false),
    ("noProxy", false, false),
    ("insecure", true, false),
    ("maxRetries", true, false),
    ("retryMode", false, false),
    ("skipCredentialsValidation", true, false),
    ("skipMetadataApiCheck", true, false),
    ("skipRegionValidation", true, false),
    ("skipRequestingAccountId", true, false),
    ("stsRegion", false, false),
    ("useDualstackEndpoint", true, false),
    ("useFipsEndpoint", true, false),
    ("s3UsePathStyle", true, false),
];

/// The stack's `aws:*` settings the us-east-1 provider inherits, read through `get`
/// (keys without the `aws:` prefix). `aws:assumeRole` (one role) becomes
/// `assumeRoles: [role]`. Problems (a JSON value that does not parse) are returned.
pub fn inherited_aws_settings(
    get: impl Fn(&str) -> Option<String>,
) -> (BTreeMap<String, ProviderSetting>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    let keys = INHERITED_AWS_KEYS
        .iter()
        .copied()
        .chain([("assumeRole", true, false)]);
    for (key, json, secret) in keys {
        let Some(raw) = get(key).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let value = if json {
            match serde_json::from_str::<serde_json::Value>(&raw) {
                Ok(v) => v,
                Err(_) => {
                    problems.push(format!("`aws:{key}` is not valid JSON: {raw}"));
                    continue;
                }
            }
        } else {
            serde_json::Value::String(raw)
        };
        let (key, value) = match key {
            "assumeRole" => ("assumeRoles", serde_json::Value::Array(vec![value])),
            k => (k, value),
        };
        out.insert(key.to_owned(), ProviderSetting { value, secret });
    }
    (out, problems)
}

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
    /// The origin secret CloudFront sends and the APIs' first functions require.
    pub origin_secret: Secret,
    /// The previous origin secret, still accepted (a rotation in progress).
    pub origin_secret_previous: Option<Secret>,
    /// The address subscribed to the alarm topic.
    pub alarm_email: Option<String>,
    /// API keys to create in the usage plan, by name.
    pub api_keys: Vec<String>,
    /// The usage plan's per-key limits.
    pub usage_plan: UsagePlanConfig,
    /// The p99 integration latency (ms) that raises the latency alarms.
    pub latency_alarm_ms: u32,
    /// The share of denied upgrades (%) that raises the authorizer alarm.
    pub deny_alarm_percent: u32,
    /// Reserved concurrency of the `fanout` function (issue 17).
    pub fanout_concurrency: u32,
    /// `@connections` posts per second the fan-out may make in all (0: no budget);
    /// each `fanout` instance gets its share (`SWITCHBOARD_FANOUT_RATE`).
    pub fanout_rate: u32,
    /// The stack's `aws:*` settings, inherited by the us-east-1 provider.
    pub aws_settings: BTreeMap<String, ProviderSetting>,
    /// The artifact's SHA-256 (hex), part of the WebSocket deployment's trigger; empty
    /// until the program has read the artifact.
    pub artifact_sha256: String,
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
        let (cfg, problems) = Self::read(get, stack, region, app_default, artifact_default);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(DeployError::Config(problems))
        }
    }

    /// [`StackConfig::from_lookup`], returning the configuration (defaults where a value
    /// is bad) together with every problem, so that later checks can add theirs.
    pub fn read(
        get: impl Fn(&str) -> Option<String>,
        stack: &str,
        region: Option<String>,
        app_default: &str,
        artifact_default: &str,
    ) -> (Self, Vec<String>) {
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
        let usage_plan_numbers = (
            number("usagePlanRateLimit", 100, 1, 10_000),
            number("usagePlanBurstLimit", 200, 1, 5_000),
            number("usagePlanQuota", 100_000, 0, 2_000_000_000),
        );
        let latency_alarm_ms = number("latencyAlarmMs", 5000, 1, 29_000);
        let deny_alarm_percent = number("authorizerDenyAlarmPercent", 50, 1, 100);
        let fanout_concurrency = number("fanoutConcurrency", 10, 1, 1000);
        let fanout_rate = number("fanoutRate", 0, 0, 1_000_000);
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
        check_domain(
            domain.as_deref(),
            hosted_zone_id.as_deref(),
            certificate_arn.as_deref(),
            &mut problems,
        );
        let region = match region.filter(|r| !r.trim().is_empty()) {
            Some(r) => r,
            None => {
                problems.push("`aws:region` is not set (pulumi config set aws:region ...)".into());
                String::new()
            }
        };
        let Production {
            origin_secret,
            origin_secret_previous,
            alarm_email,
            api_keys,
            quota_period,
        } = Production::read(&non_empty, &mut problems);
        let (rate_limit_key, burst_limit_key, quota) = usage_plan_numbers;
        let cfg = Self {
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
            origin_secret: Secret(origin_secret),
            origin_secret_previous: origin_secret_previous.map(Secret),
            alarm_email,
            api_keys,
            usage_plan: UsagePlanConfig {
                rate_limit: rate_limit_key,
                burst_limit: burst_limit_key,
                quota,
                quota_period,
            },
            latency_alarm_ms,
            deny_alarm_percent,
            fanout_concurrency,
            fanout_rate,
            aws_settings: BTreeMap::new(),
            artifact_sha256: String::new(),
        };
        (cfg, problems)
    }

    /// `{app}-{stage}`, the prefix of every physical name.
    pub fn prefix(&self) -> String {
        format!("{}-{}", self.app, self.stage)
    }
}

/// The production settings: the origin secret(s), the alarm address, the API keys and
/// the quota period.
struct Production {
    origin_secret: String,
    origin_secret_previous: Option<String>,
    alarm_email: Option<String>,
    api_keys: Vec<String>,
    quota_period: String,
}

impl Production {
    fn read(non_empty: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Self {
        let origin_secret = match non_empty("originSecret") {
            Some(v) => v,
            None => {
                problems.push(format!(
                "`originSecret` is not set: pulumi config set --secret originSecret \"$(openssl rand -hex {})\" (CloudFront sends it; a direct call to the APIs without it is refused)",
                MIN_ORIGIN_SECRET_LEN / 2
            ));
                String::new()
            }
        };
        let origin_secret_previous = non_empty("originSecretPrevious");
        for (key, v) in [
            ("originSecret", Some(&origin_secret)),
            ("originSecretPrevious", origin_secret_previous.as_ref()),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty())
                && (v.len() < MIN_ORIGIN_SECRET_LEN || !v.bytes().all(|b| b.is_ascii_graphic()))
            {
                problems.push(format!(
                "`{key}` must be at least {MIN_ORIGIN_SECRET_LEN} visible ASCII characters (no spaces): it is an HTTP header value"
            ));
            }
        }
        let alarm_email = non_empty("alarmEmail");
        if let Some(e) = &alarm_email
            && (!e.contains('@') || e.contains(char::is_whitespace))
        {
            problems.push(format!("`alarmEmail` ({e}) is not an email address"));
        }
        let api_keys: Vec<String> = non_empty("apiKeys")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for k in &api_keys {
            if !(k.len() <= 64
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            {
                problems.push(format!(
                    "`apiKeys`: `{k}` must be 1-64 letters, digits, `-` or `_`"
                ));
            }
        }
        let quota_period = non_empty("usagePlanQuotaPeriod").unwrap_or_else(|| "DAY".to_owned());
        if !matches!(quota_period.as_str(), "DAY" | "WEEK" | "MONTH") {
            problems.push(format!(
                "`usagePlanQuotaPeriod` ({quota_period}) must be DAY, WEEK or MONTH"
            ));
        }
        Self {
            origin_secret,
            origin_secret_previous,
            alarm_email,
            api_keys,
            quota_period,
        }
    }
}

/// The domain's settings: a zone or a certificate with a domain, and a certificate in
/// us-east-1 (CloudFront's only region for certificates).
fn check_domain(
    domain: Option<&str>,
    hosted_zone_id: Option<&str>,
    certificate_arn: Option<&str>,
    problems: &mut Vec<String>,
) {
    if domain.is_some() && hosted_zone_id.is_none() && certificate_arn.is_none() {
        problems.push(
            "`domain` needs `hostedZoneId` (to validate a new certificate) or `certificateArn`"
                .to_owned(),
        );
    }
    if domain.is_none() && (hosted_zone_id.is_some() || certificate_arn.is_some()) {
        problems.push("`hostedZoneId` and `certificateArn` need `domain`".to_owned());
    }
    if let Some(arn) = certificate_arn
        && arn.split(':').nth(3) != Some("us-east-1")
    {
        problems.push(format!(
            "`certificateArn` ({arn}) is not in us-east-1: CloudFront only uses certificates from us-east-1"
        ));
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

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn cfg(pairs: &[(&str, &str)]) -> Result<StackConfig, DeployError> {
        let mut map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        map.entry("originSecret".into())
            .or_insert_with(|| SECRET.into());
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

    #[test]
    fn production_checks() {
        let Err(DeployError::Config(problems)) = cfg(&[
            ("originSecret", "short"),
            ("domain", "chat.example.com"),
            (
                "certificateArn",
                "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
            ),
            ("alarmEmail", "ops"),
            ("apiKeys", "good, bad key"),
            ("usagePlanQuotaPeriod", "YEAR"),
        ]) else {
            panic!("expected a config error");
        };
        let text = problems.join("\n");
        assert_eq!(problems.len(), 5, "{text}");
        for part in [
            "originSecret",
            "not in us-east-1",
            "alarmEmail",
            "bad key",
            "YEAR",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let Err(DeployError::Config(problems)) = cfg(&[("originSecret", "")]) else {
            panic!("the origin secret is required");
        };
        assert!(
            problems[0].contains("--secret originSecret"),
            "{problems:?}"
        );
        let ok = cfg(&[("apiKeys", "partner-a,partner-b")]).unwrap();
        assert_eq!(ok.api_keys, ["partner-a", "partner-b"]);
        assert_eq!(ok.usage_plan.quota_period, "DAY");
        assert!(
            !format!("{ok:?}").contains(SECRET),
            "the secret is never printed"
        );
    }

    #[test]
    fn inherited_provider_settings() {
        let map: std::collections::HashMap<&str, &str> = [
            ("profile", "prod-admin"),
            ("assumeRole", r#"{"roleArn": "arn:aws:iam::1:role/deploy"}"#),
            ("secretKey", "s3cr3t"),
            ("maxRetries", "5"),
            ("allowedAccountIds", "not json"),
        ]
        .into_iter()
        .collect();
        let (settings, problems) = inherited_aws_settings(|k| map.get(k).map(|v| (*v).to_owned()));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(settings["profile"].value, "prod-admin");
        assert_eq!(
            settings["assumeRoles"].value,
            serde_json::json!([{"roleArn": "arn:aws:iam::1:role/deploy"}])
        );
        assert!(settings["secretKey"].secret);
        assert_eq!(settings["maxRetries"].value, 5);
    }
}
