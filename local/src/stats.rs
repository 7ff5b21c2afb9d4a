//! `GET /local/stats`: the local gateway's counters, for soak tests and for watching a
//! running gateway (`curl -s localhost:3000/local/stats`).
//!
//! Every counter is a relaxed atomic bumped once per event on the paths that already do
//! the work (accept, `$disconnect`, a frame read, a batch written), so keeping them costs
//! nothing measurable. Beside them: the runtime's [`Metrics`](switchboard_core::metrics)
//! (`metrics`: what a Lambda role would print as EMF lines, summed since the start) and
//! what the [`limits`](crate::limits) refused (`limits`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Serialize;

use super::session::Gateway;

/// The gateway's counters since it started.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    /// Connections accepted (authorizer and `$connect` said yes).
    connects: AtomicU64,
    /// `$disconnect` events dispatched (one per accepted connection, however it ended).
    disconnects: AtomicU64,
    /// Text frames read from clients.
    frames_in: AtomicU64,
    /// Frames written to clients (route responses and `@connections` posts).
    frames_out: AtomicU64,
    /// Connections closed because their outbound buffer was full.
    slow_consumer_closes: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            connects: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            slow_consumer_closes: AtomicU64::new(0),
        }
    }
}

impl Stats {
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn disconnected(&self) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn frame_in(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn frames_out(&self, n: usize) {
        self.frames_out
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Frames read and written so far (the console's charts).
    pub(crate) fn frame_totals(&self) -> (u64, u64) {
        (
            self.frames_in.load(Ordering::Relaxed),
            self.frames_out.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now, with the open-connection count and the process's memory.
    pub(crate) fn snapshot(&self, open: usize, closing: usize) -> StatsView {
        StatsView {
            open_connections: open,
            closing_connections: closing,
            connects: self.connects.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            slow_consumer_closes: self.slow_consumer_closes.load(Ordering::Relaxed),
            rss_bytes: rss_bytes(),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The JSON `GET /local/stats` answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatsView {
    open_connections: usize,
    closing_connections: usize,
    connects: u64,
    disconnects: u64,
    frames_in: u64,
    frames_out: u64,
    slow_consumer_closes: u64,
    /// Resident set size of the process (`VmRSS`); Linux only, absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_bytes: Option<u64>,
    uptime_ms: u64,
}

/// `GET /local/stats`: the gateway's counters, the runtime's metrics (the counters the
/// Lambda roles print as EMF lines: per route, fan-out, authorizer, queues) and what the
/// limits refused.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FullView {
    #[serde(flatten)]
    gateway: StatsView,
    metrics: switchboard_core::metrics::MetricsSnapshot,
    limits: crate::limits::LimitsView,
}

/// `GET /local/stats`.
pub(crate) async fn stats_json(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    let hub = &gateway.hub;
    axum::Json(FullView {
        gateway: hub.stats.snapshot(hub.len(), gateway.closing()),
        metrics: gateway.dispatcher.services().metrics.snapshot(),
        limits: gateway.limits.counters.view(),
    })
}

/// The process's resident set size, from `/proc/self/status`.
#[cfg(target_os = "linux")]
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

#[cfg(not(target_os = "linux"))]
fn rss_bytes() -> Option<u64> {
    None
}

/// `VmRSS:   123456 kB` → bytes.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let unit = parts.next().unwrap_or("kB");
    let factor = match unit {
        "kB" => 1024,
        "mB" | "MB" => 1024 * 1024,
        "B" => 1,
        _ => return None,
    };
    value.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tchat-app\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: lots kB\n"), None);
    }

    #[test]
    fn counts() {
        let stats = Stats::default();
        stats.connected();
        stats.connected();
        stats.disconnected();
        stats.frame_in();
        stats.frames_out(3);
        stats.slow_consumer_closed();
        let v = serde_json::to_value(stats.snapshot(1, 0)).unwrap_or_default();
        assert_eq!(v["openConnections"], 1);
        assert_eq!(v["connects"], 2);
        assert_eq!(v["disconnects"], 1);
        assert_eq!(v["framesIn"], 1);
        assert_eq!(v["framesOut"], 3);
        assert_eq!(v["slowConsumerCloses"], 1);
        #[cfg(target_os = "linux")]
        assert!(v["rssBytes"].as_u64().is_some_and(|b| b > 0), "{v}");
    }
}
