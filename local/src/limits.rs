//! API keys, the usage plan and per-route throttling, as API Gateway enforces them on a
//! WebSocket API, with a clock tests can move ([`Clock::manual`]).
//!
//! | check | when | answer |
//! |---|---|---|
//! | origin secret ([`LocalConfig::origin_secrets`](crate::LocalConfig)) | every upgrade and `/http/*` call | `403 {"message":"Forbidden"}` |
//! | API key (any route `api_key = true`) | upgrade: `x-api-key` not one of [`LocalConfig::api_keys`](crate::LocalConfig) | `403 {"message":"Forbidden"}` |
//! | usage plan rate/burst (per key) | upgrade, every message of a keyed connection | `429 {"message":"Too Many Requests"}`; a message gets the error frame |
//! | usage plan quota (per key, per UTC day / ISO week / month) | the same | `429 {"message":"Limit Exceeded"}`; a message gets the error frame |
//! | route `throttle_rate`/`throttle_burst` (one bucket per route, all clients) | a message to the route (`$connect`: the upgrade) | error frame `{"message":"Too Many Requests","connectionId":..,"requestId":..}`, the connection stays (`$connect`: 429) |
//!
//! The checks run in that order, before the authorizer; a refused request uses no quota.
//! A route with a rate and no burst gets a burst of one second's worth (the rate); a
//! burst without a rate is not throttled locally (on AWS the stage's rate applies).
//! What a usage plan counts on a WebSocket API (each message as a request, like the
//! upgrade) is *unverified*; API Gateway documents only that plans apply to its stages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Datelike, TimeZone, Utc};
use serde::Serialize;

pub use switchboard_core::clock::{Clock, ManualClock};
use switchboard_core::registry::Registry;

/// A usage plan's quota period (`usagePlanQuotaPeriod`), in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaPeriod {
    /// A calendar day.
    Day,
    /// An ISO week (from Monday).
    Week,
    /// A calendar month.
    Month,
}

impl std::str::FromStr for QuotaPeriod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "DAY" => Ok(Self::Day),
            "WEEK" => Ok(Self::Week),
            "MONTH" => Ok(Self::Month),
            _ => Err(format!("`{s}` is no quota period: DAY, WEEK or MONTH")),
        }
    }
}

impl QuotaPeriod {
    /// The number of the period `epoch_ms` falls in (equal numbers: the same period).
    fn index(self, epoch_ms: i64) -> i64 {
        let day = epoch_ms.div_euclid(86_400_000);
        match self {
            Self::Day => day,
            // 1970-01-01 was a Thursday: shift so weeks start on Monday.
            Self::Week => (day + 3).div_euclid(7),
            Self::Month => match Utc.timestamp_millis_opt(epoch_ms).single() {
                Some(t) => i64::from(t.year()) * 12 + i64::from(t.month0()),
                None => day,
            },
        }
    }
}

/// The usage plan every local API key is in (the stack's `usagePlan*` settings).
/// Unset parts do not limit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsagePlan {
    /// Steady requests per second per key (`--usage-plan-rate`).
    pub rate: Option<f64>,
    /// Burst per key (`--usage-plan-burst`); default: the rate.
    pub burst: Option<u32>,
    /// Requests per period per key (`--usage-plan-quota`), and the period.
    pub quota: Option<(u64, QuotaPeriod)>,
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, i64)>,
}

impl Bucket {
    fn new(rate: f64, burst: f64, now_ms: i64) -> Self {
        Self {
            rate,
            burst,
            state: Mutex::new((burst, now_ms)),
        }
    }

    /// Takes a token if there is one.
    fn take(&self, now_ms: i64) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        let (tokens, last) = *state;
        let elapsed = (now_ms - last).max(0) as f64 / 1000.0;
        let tokens = (tokens + elapsed * self.rate).min(self.burst);
        let (tokens, ok) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        *state = (tokens, now_ms.max(last));
        ok
    }
}

/// One API key's share of the usage plan.
#[derive(Debug)]
pub(crate) struct KeyLimits {
    bucket: Option<Bucket>,
    quota: Option<(u64, QuotaPeriod)>,
    /// (period index, requests counted in it).
    used: Mutex<(i64, u64)>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limited {
    /// Over a rate: 429 `Too Many Requests`.
    Throttled,
    /// Over the quota: 429 `Limit Exceeded`.
    QuotaExceeded,
}

impl Limited {
    /// API Gateway's message.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Throttled => "Too Many Requests",
            Self::QuotaExceeded => "Limit Exceeded",
        }
    }
}

impl KeyLimits {
    /// Counts one request of this key: its rate first, then its quota.
    pub(crate) fn admit(&self, now_ms: i64) -> Result<(), Limited> {
        if let Some(bucket) = &self.bucket
            && !bucket.take(now_ms)
        {
            return Err(Limited::Throttled);
        }
        if let Some((limit, period)) = self.quota
            && let Ok(mut used) = self.used.lock()
        {
            let index = period.index(now_ms);
            if used.0 != index {
                *used = (index, 0);
            }
            if used.1 >= limit {
                return Err(Limited::QuotaExceeded);
            }
            used.1 += 1;
        }
        Ok(())
    }
}

/// The gateway's limits: keys, the plan, route buckets, and what they refused.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) clock: Clock,
    /// Whether upgrades need a key (a route has `api_key = true`).
    pub(crate) key_required: bool,
    keys: HashMap<String, Arc<KeyLimits>>,
    routes: HashMap<&'static str, Bucket>,
    pub(crate) counters: LimitCounters,
}

/// What the limits refused, for `/local/stats`.
#[derive(Debug, Default)]
pub(crate) struct LimitCounters {
    origin_refused: AtomicU64,
    api_key_refused: AtomicU64,
    throttled: AtomicU64,
    quota_exceeded: AtomicU64,
}

/// [`LimitCounters`] as `/local/stats` shows them.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LimitsView {
    origin_refused: u64,
    api_key_refused: u64,
    throttled: u64,
    quota_exceeded: u64,
}

impl LimitCounters {
    pub(crate) fn origin_refused(&self) {
        self.origin_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn api_key_refused(&self) {
        self.api_key_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn limited(&self, why: Limited) {
        let counter = match why {
            Limited::Throttled => &self.throttled,
            Limited::QuotaExceeded => &self.quota_exceeded,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn view(&self) -> LimitsView {
        LimitsView {
            origin_refused: self.origin_refused.load(Ordering::Relaxed),
            api_key_refused: self.api_key_refused.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            quota_exceeded: self.quota_exceeded.load(Ordering::Relaxed),
        }
    }
}

impl Limits {
    /// The limits of `registry`'s routes and the configured keys and plan.
    pub(crate) fn new(
        registry: &Registry,
        keys: &[String],
        plan: &UsagePlan,
        clock: Clock,
    ) -> Self {
        let now = clock.now_ms();
        let routes = registry
            .routes()
            .iter()
            .filter_map(|r| {
                let rate = f64::from(r.def.options.throttle_rate?);
                let burst = r.def.options.throttle_burst.map_or(rate, f64::from);
                Some((r.def.key, Bucket::new(rate, burst, now)))
            })
            .collect();
        let key_required = registry.routes().iter().any(|r| r.def.options.api_key);
        if key_required && keys.is_empty() {
            tracing::warn!(
                "a route has api_key = true but no --api-key is configured: every upgrade gets 403"
            );
        }
        let keys = keys
            .iter()
            .map(|k| {
                let bucket = plan.rate.map(|rate| {
                    let burst = plan.burst.map_or(rate, f64::from);
                    Bucket::new(rate, burst, now)
                });
                let limits = KeyLimits {
                    bucket,
                    quota: plan.quota,
                    used: Mutex::new((i64::MIN, 0)),
                };
                (k.clone(), Arc::new(limits))
            })
            .collect();
        Self {
            clock,
            key_required,
            keys,
            routes,
            counters: LimitCounters::default(),
        }
    }

    /// The limits of the key an upgrade presents: `Ok(None)` when no key is required,
    /// `Err(())` when one is and this is not a configured key (403). Keys are compared
    /// in constant time.
    pub(crate) fn key_for(&self, given: Option<&[u8]>) -> Result<Option<Arc<KeyLimits>>, ()> {
        if !self.key_required {
            return Ok(None);
        }
        let given = given.ok_or(())?;
        let mut found = None;
        for (key, limits) in &self.keys {
            if switchboard_core::origin::constant_time_eq(key.as_bytes(), given) {
                found = Some(Arc::clone(limits));
            }
        }
        found.map(Some).ok_or(())
    }

    /// Takes a token from `route`'s bucket, when the route is throttled.
    pub(crate) fn admit_route(&self, route: &str) -> Result<(), Limited> {
        match self.routes.get(route) {
            Some(bucket) if !bucket.take(self.clock.now_ms()) => Err(Limited::Throttled),
            _ => Ok(()),
        }
    }

    /// A request of a connection (or upgrade) with `key` to `route`: the key's plan,
    /// then the route's bucket. Counted when refused.
    pub(crate) fn admit(&self, key: Option<&KeyLimits>, route: &str) -> Result<(), Limited> {
        let result = match key {
            Some(key) => key.admit(self.clock.now_ms()),
            None => Ok(()),
        }
        .and_then(|()| self.admit_route(route));
        if let Err(why) = result {
            self.counters.limited(why);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_burst() {
        let bucket = Bucket::new(2.0, 3.0, 0);
        assert!((0..3).all(|_| bucket.take(0)));
        assert!(!bucket.take(0));
        assert!(!bucket.take(499), "half a token");
        assert!(bucket.take(500));
        assert!(!bucket.take(500));
        // Ten seconds later: full again, but no more than the burst.
        assert_eq!((0..5).filter(|_| bucket.take(10_500)).count(), 3);
    }

    #[test]
    fn quota_resets_with_its_period() {
        let limits = KeyLimits {
            bucket: None,
            quota: Some((2, QuotaPeriod::Day)),
            used: Mutex::new((i64::MIN, 0)),
        };
        let day = 86_400_000;
        assert_eq!(limits.admit(day + 1), Ok(()));
        assert_eq!(limits.admit(day + 2), Ok(()));
        assert_eq!(limits.admit(2 * day - 1), Err(Limited::QuotaExceeded));
        assert_eq!(limits.admit(2 * day), Ok(()));
    }

    #[test]
    fn periods() {
        // 2026-12-06 is a Sunday, 2026-12-07 a Monday.
        let at = |y, m, d| {
            Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
                .single()
                .map(|t| t.timestamp_millis())
                .unwrap_or(0)
        };
        let (sun, mon, tue) = (at(2026, 12, 6), at(2026, 12, 7), at(2026, 12, 8));
        assert_ne!(QuotaPeriod::Week.index(sun), QuotaPeriod::Week.index(mon));
        assert_eq!(QuotaPeriod::Week.index(mon), QuotaPeriod::Week.index(tue));
        assert_eq!(
            QuotaPeriod::Month.index(at(2026, 12, 1)),
            QuotaPeriod::Month.index(at(2026, 12, 31))
        );
        assert_ne!(
            QuotaPeriod::Month.index(at(2026, 11, 30)),
            QuotaPeriod::Month.index(at(2026, 12, 1))
        );
        assert_eq!("week".parse::<QuotaPeriod>(), Ok(QuotaPeriod::Week));
        assert!("fortnight".parse::<QuotaPeriod>().is_err());
    }
}
