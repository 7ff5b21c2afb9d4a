//! Human-readable tables and the gateway/bare comparison.

use serde::Serialize;

use crate::{Kind, TargetReport, idle::IdleReport};

/// Target: gateway echo throughput at least this fraction of bare.
const ECHO_RATIO_TARGET: f64 = 0.8;
/// Target: gateway echo p99 below this, microseconds.
const ECHO_P99_TARGET_US: u64 = 2_000;
/// Target: gateway broadcast deliveries per second (throughput phase).
const BROADCAST_TARGET: f64 = 200_000.0;
/// Target: gateway RSS at this many idle connections ...
const IDLE_TARGET_CONNECTIONS: usize = 10_000;
/// ... below this, KiB (200 MB).
const IDLE_TARGET_KIB: u64 = 200 * 1000 * 1000 / 1024;

/// 1234567 -> "1,234,567".
fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_sec(x: f64) -> String {
    int(x.round() as u64)
}

/// Prints one target's table.
pub(crate) fn print_target(r: &TargetReport, rounds: usize) {
    println!();
    println!(
        "== {} (round {}/{rounds}) {}",
        r.target.name(),
        r.round,
        r.url.as_deref().unwrap_or("(not started)")
    );
    if let Some(err) = &r.error {
        println!("   ERROR: {err}");
        return;
    }
    let emfile = r.emfile();
    if let Some(c) = &r.connect {
        println!(
            "   {:<10} {:>22} {:>16} conn/s   upgrade p50 {:>8} us  p99 {:>8} us   failed {}, unclean closes {}",
            "connect",
            format!("{}/{} ok", int(c.ok as u64), int(c.attempted as u64)),
            per_sec(c.connects_per_sec),
            int(c.p50_us),
            int(c.p99_us),
            c.failed,
            c.unclean_closes,
        );
        for (reason, n) in c.failure_reasons.iter().take(5) {
            println!("   {:<10}   failure: {reason} (x{n})", "");
        }
    }
    if let Some(e) = &r.echo {
        println!(
            "   {:<10} {:>22} {:>16} msgs/s   rtt     p50 {:>8} us  p99 {:>8} us   errors {}, other frames {}, setup failures {}",
            "echo",
            format!(
                "{} msgs ({}x{})",
                int(e.ok),
                e.connections,
                e.messages_per_connection
            ),
            per_sec(e.msgs_per_sec),
            int(e.p50_us),
            int(e.p99_us),
            e.errors,
            e.other_frames,
            e.setup_failures,
        );
    }
    if let Some(e) = &r.latency {
        println!(
            "   {:<10} {:>22} {:>16} msgs/s   rtt     p50 {:>8} us  p99 {:>8} us   errors {}, other frames {}",
            "latency",
            format!("{} msgs (1 conn)", int(e.ok)),
            per_sec(e.msgs_per_sec),
            int(e.p50_us),
            int(e.p99_us),
            e.errors,
            e.other_frames,
        );
    }
    for b in &r.broadcast {
        for p in &b.phases {
            println!(
                "   {:<10} {:>22} {:>16} deliv/s  to-all  p50 {:>8} us  p99 {:>8} us   missing {}",
                format!("bcast w{}", p.window),
                format!(
                    "{} cl, {}/{}",
                    int(b.clients as u64),
                    int(p.deliveries),
                    int(p.expected_deliveries)
                ),
                per_sec(p.deliveries_per_sec),
                int(p.p50_time_to_all_us),
                int(p.p99_time_to_all_us),
                p.missing,
            );
            if p.incomplete_messages > 0 {
                println!(
                    "   {:<10}   {} broadcast(s) did not reach every client in time",
                    "", p.incomplete_messages
                );
            }
        }
        if b.errors + b.other_frames + b.duplicates > 0 || b.setup_failures + b.unclean_closes > 0 {
            println!(
                "   {:<10}   {} clients: errors {}, other frames {}, duplicates {}, setup failures {}, unclean closes {}",
                "",
                b.clients,
                b.errors,
                b.other_frames,
                b.duplicates,
                b.setup_failures,
                b.unclean_closes
            );
        }
    }
    if emfile {
        println!(
            "   ERROR: connections failed with \"Too many open files\": raise the limit with \
             `ulimit -n 65536` in this shell and run again; these figures are not valid."
        );
    }
}

/// One target's key figures: medians over the rounds, counters summed.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Figures {
    /// Rounds that produced figures.
    pub(crate) rounds: usize,
    /// Median connects/s.
    pub(crate) connects_per_sec: f64,
    /// Median p99 upgrade time.
    pub(crate) connect_p99_us: f64,
    /// Failed upgrades, all rounds.
    pub(crate) connect_failures: usize,
    /// Median echo msgs/s.
    pub(crate) echo_msgs_per_sec: f64,
    /// Median echo p50.
    pub(crate) echo_p50_us: f64,
    /// Median echo p99.
    pub(crate) echo_p99_us: f64,
    /// Echo errors, all rounds.
    pub(crate) echo_errors: u64,
    /// Median single-connection p50.
    pub(crate) latency_p50_us: f64,
    /// Median single-connection p99.
    pub(crate) latency_p99_us: f64,
    /// Per broadcast size and window: medians over the rounds.
    pub(crate) broadcast: Vec<BroadcastFigures>,
    /// Missing broadcast deliveries, all rounds.
    pub(crate) broadcast_missing: u64,
    /// Error frames, unclean closes, setup failures, other frames, all rounds
    /// and scenarios: anything that is not a clean run.
    pub(crate) anomalies: u64,
}

/// One broadcast phase's figures.
#[derive(Debug, Default, Serialize)]
pub(crate) struct BroadcastFigures {
    /// Clients.
    pub(crate) clients: usize,
    /// Broadcasts in flight at most.
    pub(crate) window: usize,
    /// Median deliveries/s.
    pub(crate) deliveries_per_sec: f64,
    /// Median p99 time-to-all.
    pub(crate) p99_time_to_all_us: f64,
}

/// Median; the mean of the middle two for an even count; 0 when empty.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => xs[n / 2],
        _ => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

impl Figures {
    fn new(reports: &[&TargetReport]) -> Option<Self> {
        let ok: Vec<&TargetReport> = reports
            .iter()
            .copied()
            .filter(|r| r.error.is_none())
            .collect();
        if ok.is_empty() {
            return None;
        }
        let med = |f: &dyn Fn(&TargetReport) -> Option<f64>| {
            median(ok.iter().filter_map(|r| f(r)).collect())
        };
        let mut fig = Self {
            rounds: ok.len(),
            connects_per_sec: med(&|r| r.connect.as_ref().map(|c| c.connects_per_sec)),
            connect_p99_us: med(&|r| r.connect.as_ref().map(|c| c.p99_us as f64)),
            echo_msgs_per_sec: med(&|r| r.echo.as_ref().map(|e| e.msgs_per_sec)),
            echo_p50_us: med(&|r| r.echo.as_ref().map(|e| e.p50_us as f64)),
            echo_p99_us: med(&|r| r.echo.as_ref().map(|e| e.p99_us as f64)),
            latency_p50_us: med(&|r| r.latency.as_ref().map(|e| e.p50_us as f64)),
            latency_p99_us: med(&|r| r.latency.as_ref().map(|e| e.p99_us as f64)),
            ..Self::default()
        };
        // (clients, window) in the order of the first round.
        let mut keys: Vec<(usize, usize)> = Vec::new();
        for b in &ok[0].broadcast {
            for p in &b.phases {
                keys.push((b.clients, p.window));
            }
        }
        for (clients, window) in keys {
            let phase = |r: &TargetReport| {
                r.broadcast
                    .iter()
                    .filter(|b| b.clients == clients)
                    .flat_map(|b| b.phases.iter())
                    .find(|p| p.window == window)
                    .map(|p| (p.deliveries_per_sec, p.p99_time_to_all_us as f64))
            };
            fig.broadcast.push(BroadcastFigures {
                clients,
                window,
                deliveries_per_sec: med(&|r| phase(r).map(|p| p.0)),
                p99_time_to_all_us: med(&|r| phase(r).map(|p| p.1)),
            });
        }
        for r in ok {
            if let Some(c) = &r.connect {
                fig.connect_failures += c.failed;
                fig.anomalies += c.unclean_closes as u64;
            }
            if let Some(e) = &r.echo {
                fig.echo_errors += e.errors;
                fig.anomalies += e.other_frames + (e.unclean_closes + e.setup_failures) as u64;
            }
            if let Some(e) = &r.latency {
                fig.anomalies +=
                    e.errors + e.other_frames + (e.unclean_closes + e.setup_failures) as u64;
            }
            for b in &r.broadcast {
                fig.broadcast_missing += b.phases.iter().map(|p| p.missing).sum::<u64>();
                fig.anomalies += b.errors
                    + b.other_frames
                    + b.duplicates
                    + (b.unclean_closes + b.setup_failures) as u64;
            }
        }
        Some(fig)
    }
}

/// Both targets' figures, gateway/bare ratios and the targets.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    /// Bare server figures.
    pub(crate) bare: Option<Figures>,
    /// Gateway figures.
    pub(crate) gateway: Option<Figures>,
    /// gateway connects/s over bare connects/s.
    pub(crate) connect_rate_ratio: Option<f64>,
    /// gateway echo msgs/s over bare echo msgs/s.
    pub(crate) echo_msgs_ratio: Option<f64>,
    /// Per broadcast size and window: gateway deliveries/s over bare.
    pub(crate) broadcast_deliveries_ratio: Vec<(usize, usize, Option<f64>)>,
    /// Per broadcast size with a window > 1: gateway deliveries/s >= 200,000.
    pub(crate) broadcast_target_met: Vec<(usize, bool)>,
    /// Idle memory, bare server.
    pub(crate) idle_bare: Option<IdleFigures>,
    /// Idle memory, gateway.
    pub(crate) idle_gateway: Option<IdleFigures>,
    /// Gateway RSS at 10,000 idle connections < 200 MB.
    pub(crate) idle_target_met: Option<bool>,
    /// `echo_msgs_ratio >= 0.8` (and no gateway echo errors).
    pub(crate) echo_ratio_target_met: Option<bool>,
    /// gateway echo p99 < 2000 us (and no gateway echo errors).
    pub(crate) echo_p99_target_met: Option<bool>,
}

/// Idle-memory figures of one target.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct IdleFigures {
    /// RSS with no connection, KiB.
    pub(crate) baseline_kib: u64,
    /// Largest step reached.
    pub(crate) connections: usize,
    /// RSS at the largest step, KiB.
    pub(crate) rss_kib: u64,
    /// Growth per 1000 connections at the largest step, KiB.
    pub(crate) kib_per_1000: f64,
    /// Upgrades that failed.
    pub(crate) failures: usize,
}

impl IdleFigures {
    fn new(r: &IdleReport) -> Option<Self> {
        let last = r.steps.last()?;
        Some(Self {
            baseline_kib: r.baseline_kib,
            connections: last.connections,
            rss_kib: last.rss_kib,
            kib_per_1000: last.kib_per_1000,
            failures: r.setup_failures,
        })
    }
}

fn ratio(gw: f64, bare: f64) -> Option<f64> {
    (bare > 0.0).then(|| gw / bare)
}

impl Summary {
    pub(crate) fn new(reports: &[TargetReport], idle: &[(Kind, IdleReport)]) -> Self {
        let of = |k: Kind| {
            let rs: Vec<&TargetReport> = reports.iter().filter(|r| r.target == k).collect();
            Figures::new(&rs)
        };
        let mut s = Self {
            bare: of(Kind::Bare),
            gateway: of(Kind::Gateway),
            ..Self::default()
        };
        if let Some(g) = &s.gateway {
            s.echo_p99_target_met =
                Some(g.echo_p99_us < ECHO_P99_TARGET_US as f64 && g.echo_errors == 0);
        }
        if let (Some(b), Some(g)) = (&s.bare, &s.gateway) {
            s.connect_rate_ratio = ratio(g.connects_per_sec, b.connects_per_sec);
            s.echo_msgs_ratio = ratio(g.echo_msgs_per_sec, b.echo_msgs_per_sec);
            s.echo_ratio_target_met = s
                .echo_msgs_ratio
                .map(|r| r >= ECHO_RATIO_TARGET && g.echo_errors == 0);
            for gb in &g.broadcast {
                let bare = b
                    .broadcast
                    .iter()
                    .find(|x| x.clients == gb.clients && x.window == gb.window);
                s.broadcast_deliveries_ratio.push((
                    gb.clients,
                    gb.window,
                    bare.and_then(|x| ratio(gb.deliveries_per_sec, x.deliveries_per_sec)),
                ));
            }
        }
        if let Some(g) = &s.gateway {
            for gb in g.broadcast.iter().filter(|x| x.window > 1) {
                s.broadcast_target_met.push((
                    gb.clients,
                    gb.deliveries_per_sec >= BROADCAST_TARGET && g.broadcast_missing == 0,
                ));
            }
        }
        for (kind, r) in idle {
            let fig = IdleFigures::new(r);
            match kind {
                Kind::Bare => s.idle_bare = fig,
                Kind::Gateway => {
                    s.idle_target_met = r
                        .steps
                        .iter()
                        .find(|st| st.connections == IDLE_TARGET_CONNECTIONS)
                        .map(|st| st.rss_kib < IDLE_TARGET_KIB && r.setup_failures == 0);
                    s.idle_gateway = fig;
                }
            }
        }
        s
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "n/a",
    }
}

fn show_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"))
}

/// Prints the comparison table (medians over rounds) and the targets.
pub(crate) fn print_summary(s: &Summary) {
    println!();
    let rounds = s
        .bare
        .as_ref()
        .or(s.gateway.as_ref())
        .map_or(0, |f| f.rounds);
    if rounds > 0 {
        println!("== summary: median over {rounds} round(s); counters summed over all rounds");
        println!(
            "   {:<28} {:>14} {:>14} {:>14}",
            "", "bare", "gateway", "gateway/bare"
        );
        let cell = |f: &Option<Figures>, get: &dyn Fn(&Figures) -> String| {
            f.as_ref().map_or_else(|| "-".to_owned(), get)
        };
        let row = |name: &str, get: &dyn Fn(&Figures) -> String, r: Option<f64>| {
            let r = if r.is_some() {
                show_ratio(r)
            } else {
                String::new()
            };
            println!(
                "   {name:<28} {:>14} {:>14} {r:>14}",
                cell(&s.bare, get),
                cell(&s.gateway, get)
            );
        };
        let us = |x: f64| int(x.round() as u64);
        row(
            "connect rate (conn/s)",
            &|f| per_sec(f.connects_per_sec),
            s.connect_rate_ratio,
        );
        row("connect p99 (us)", &|f| us(f.connect_p99_us), None);
        row(
            "connect failures",
            &|f| f.connect_failures.to_string(),
            None,
        );
        row(
            "echo (msgs/s)",
            &|f| per_sec(f.echo_msgs_per_sec),
            s.echo_msgs_ratio,
        );
        row("echo p50 (us)", &|f| us(f.echo_p50_us), None);
        row("echo p99 (us)", &|f| us(f.echo_p99_us), None);
        row("echo errors", &|f| f.echo_errors.to_string(), None);
        row("latency 1 conn p50 (us)", &|f| us(f.latency_p50_us), None);
        row("latency 1 conn p99 (us)", &|f| us(f.latency_p99_us), None);
        for (clients, window, r) in &s.broadcast_deliveries_ratio {
            let find = |f: &Figures| {
                f.broadcast
                    .iter()
                    .find(|x| x.clients == *clients && x.window == *window)
                    .map_or_else(|| "-".to_owned(), |x| per_sec(x.deliveries_per_sec))
            };
            row(
                &format!("bcast {clients} cl w{window} (deliv/s)"),
                &find,
                *r,
            );
            let p99 = |f: &Figures| {
                f.broadcast
                    .iter()
                    .find(|x| x.clients == *clients && x.window == *window)
                    .map_or_else(|| "-".to_owned(), |x| us(x.p99_time_to_all_us))
            };
            row(
                &format!("bcast {clients} cl w{window} p99 to-all (us)"),
                &p99,
                None,
            );
        }
        row(
            "broadcast missing",
            &|f| f.broadcast_missing.to_string(),
            None,
        );
        row("other anomalies", &|f| f.anomalies.to_string(), None);
        println!();
    }
    if s.idle_bare.is_some() || s.idle_gateway.is_some() {
        println!("== idle memory: server process RSS (child process)");
        println!(
            "   {:<28} {:>14} {:>14} {:>14}",
            "", "bare", "gateway", "gateway/bare"
        );
        let cell = |f: &Option<IdleFigures>, get: &dyn Fn(&IdleFigures) -> String| {
            f.as_ref().map_or_else(|| "-".to_owned(), get)
        };
        let mib = |kib: f64| format!("{:.1} MiB", kib / 1024.0);
        let idle_row = |name: &str, get: &dyn Fn(&IdleFigures) -> String, r: Option<f64>| {
            println!(
                "   {name:<28} {:>14} {:>14} {:>14}",
                cell(&s.idle_bare, get),
                cell(&s.idle_gateway, get),
                r.map_or_else(String::new, |r| format!("{r:.2}x"))
            );
        };
        let both = s.idle_bare.as_ref().zip(s.idle_gateway.as_ref());
        idle_row("baseline RSS", &|f| mib(f.baseline_kib as f64), None);
        idle_row("idle connections", &|f| int(f.connections as u64), None);
        idle_row(
            "RSS at that count",
            &|f| mib(f.rss_kib as f64),
            both.and_then(|(b, g)| ratio(g.rss_kib as f64, b.rss_kib as f64)),
        );
        idle_row(
            "RSS per 1000 connections",
            &|f| mib(f.kib_per_1000),
            both.and_then(|(b, g)| ratio(g.kib_per_1000, b.kib_per_1000)),
        );
        idle_row("failed upgrades", &|f| f.failures.to_string(), None);
        println!();
    }
    println!("== targets");
    println!(
        "   {:<38} : {} ({})",
        format!("gateway echo msgs/s >= {ECHO_RATIO_TARGET}x bare"),
        verdict(s.echo_ratio_target_met),
        show_ratio(s.echo_msgs_ratio)
    );
    println!(
        "   {:<38} : {} ({})",
        format!(
            "gateway echo p99 < {} ms (100 conns)",
            ECHO_P99_TARGET_US / 1000
        ),
        verdict(s.echo_p99_target_met),
        s.gateway.as_ref().map_or_else(
            || "n/a".to_owned(),
            |g| format!("{} us", int(g.echo_p99_us.round() as u64))
        )
    );
    for (clients, met) in &s.broadcast_target_met {
        let got = s
            .gateway
            .as_ref()
            .and_then(|g| {
                g.broadcast
                    .iter()
                    .find(|x| x.clients == *clients && x.window > 1)
            })
            .map_or_else(
                || "n/a".to_owned(),
                |x| format!("{}/s", per_sec(x.deliveries_per_sec)),
            );
        println!(
            "   {:<38} : {} ({got})",
            format!("gateway broadcast >= 200k deliv/s, {clients} cl"),
            verdict(Some(*met)),
        );
    }
    println!(
        "   {:<38} : {} ({})",
        "gateway RSS at 10,000 idle < 200 MB",
        verdict(s.idle_target_met),
        s.idle_gateway.as_ref().map_or_else(
            || "n/a".to_owned(),
            |g| format!(
                "{:.1} MiB at {}",
                g.rss_kib as f64 / 1024.0,
                int(g.connections as u64)
            )
        )
    );
}

/// Prints one target's idle-memory steps.
pub(crate) fn print_idle(kind: Kind, r: &IdleReport) {
    println!();
    println!(
        "== {} idle connections (server in a child process)",
        kind.name()
    );
    if let Some(err) = &r.error {
        println!("   ERROR: {err}");
    }
    println!("   baseline RSS {:.1} MiB", r.baseline_kib as f64 / 1024.0);
    for st in &r.steps {
        println!(
            "   {:>8} connections   RSS {:>8.1} MiB   {:>7.1} KiB per connection",
            int(st.connections as u64),
            st.rss_kib as f64 / 1024.0,
            st.kib_per_1000 / 1000.0
        );
    }
    for (reason, n) in r.failure_reasons.iter().take(5) {
        println!("   failure: {reason} (x{n})");
    }
    if r.emfile {
        println!("   ERROR: \"Too many open files\": raise `ulimit -n`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn thousands() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
    }
}
