//! API keys: when a route needs one (`api_key = true`), the WebSocket API's `$connect`
//! route requires a key (see `ws_api`), and the stage joins a usage plan with the
//! stack's per-key rate, burst and quota. The keys named in `apiKeys` are created in
//! it; more are added by hand (the README's "API keys"), outside the stack.
//!
//! WebSocket APIs use REST API Gateway's usage plans: `aws:apigateway/usagePlan`
//! with the v2 API's id and stage in `apiStages`.

use std::collections::BTreeMap;

use super::{Handle, Plan, physical};
use crate::aws::{ApiKey, UsagePlan, UsagePlanKey};
use crate::config::StackConfig;
use crate::input::Input;
use crate::model::Service;

/// The usage plan and its keys, by name.
pub(super) struct Keys {
    /// The usage plan.
    pub(super) plan: Handle,
    /// The keys created from `apiKeys`.
    pub(super) keys: BTreeMap<String, Handle>,
}

/// The usage plan (after the stage) and every configured key in it, if any route
/// needs a key.
pub(super) fn usage_plan(
    p: &mut Plan,
    service: &Service,
    cfg: &StackConfig,
    prefix: &str,
    ws_api: Handle,
    ws_stage: Handle,
) -> Option<Keys> {
    if !service.api_key_required() {
        return None;
    }
    let limits = &cfg.usage_plan;
    let plan = p.add(
        "ws",
        UsagePlan {
            name: physical(prefix, "ws", 255),
            description: "Per-key limits of the WebSocket API (keys are checked on $connect)"
                .to_owned(),
            api_stages: vec![Input::object([
                ("apiId", Some(ws_api.id())),
                ("stage", Some(ws_stage.out("name"))),
            ])],
            throttle_settings: Input::object([
                ("rateLimit", Some(Input::from(limits.rate_limit))),
                ("burstLimit", Some(Input::from(limits.burst_limit))),
            ]),
            quota_settings: (limits.quota > 0).then(|| {
                Input::object([
                    ("limit", Some(Input::from(limits.quota))),
                    ("period", Some(Input::str(limits.quota_period.clone()))),
                ])
            }),
        },
    );
    let mut keys = BTreeMap::new();
    for name in &cfg.api_keys {
        let key = p.add(
            format!("key-{name}"),
            ApiKey {
                name: physical(prefix, name, 1024),
                description: format!("{prefix}: API key `{name}` (stack config `apiKeys`)"),
                enabled: true,
            },
        );
        p.add(
            format!("key-{name}"),
            UsagePlanKey {
                key_id: key.id(),
                key_type: "API_KEY",
                usage_plan_id: plan.id(),
            },
        );
        keys.insert(name.clone(), key);
    }
    Some(Keys { plan, keys })
}
