//! Human-readable tables and the gateway/bare comparison.

use serde::Serialize;

use crate::{Kind, TargetReport};

/// Target: gateway echo throughput at least this fraction of bare.
const ECHO_RATIO_TARGET: f64 = 0.8;
/// Target: gateway echo p99 below this, microseconds.
const ECHO_P99_TARGET_US: u64 = 2_000;

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
    if let Some(b) = &r.broadcast {
        println!(
            "   {:<10} {:>22} {:>16} deliv/s  to-all  p50 {:>8} us  p99 {:>8} us   missing {}, errors {}, other frames {}, setup failures {}",
            "broadcast",
            format!("{}/{} deliv", int(b.deliveries), int(b.expected_deliveries)),
            per_sec(b.deliveries_per_sec),
            int(b.p50_time_to_all_us),
            int(b.p99_time_to_all_us),
            b.missing,
            b.errors,
            b.other_frames,
            b.setup_failures,
        );
        if b.incomplete_messages > 0 || b.duplicates > 0 {
            println!(
                "   {:<10}   {} broadcast(s) did not reach every client in time; {} duplicate deliveries",
                "", b.incomplete_messages, b.duplicates
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
    /// Median broadcast deliveries/s.
    pub(crate) broadcast_deliveries_per_sec: f64,
    /// Median broadcast p99 time-to-all.
    pub(crate) broadcast_p99_time_to_all_us: f64,
    /// Missing broadcast deliveries, all rounds.
    pub(crate) broadcast_missing: u64,
    /// Error frames, unclean closes, setup failures, other frames, all rounds
    /// and scenarios: anything that is not a clean run.
    pub(crate) anomalies: u64,
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
            broadcast_deliveries_per_sec: med(&|r| {
                r.broadcast.as_ref().map(|b| b.deliveries_per_sec)
            }),
            broadcast_p99_time_to_all_us: med(&|r| {
                r.broadcast.as_ref().map(|b| b.p99_time_to_all_us as f64)
            }),
            ..Self::default()
        };
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
            if let Some(b) = &r.broadcast {
                fig.broadcast_missing += b.missing;
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
    /// gateway broadcast deliveries/s over bare.
    pub(crate) broadcast_deliveries_ratio: Option<f64>,
    /// `echo_msgs_ratio >= 0.8` (and no gateway echo errors).
    pub(crate) echo_ratio_target_met: Option<bool>,
    /// gateway echo p99 < 2000 us (and no gateway echo errors).
    pub(crate) echo_p99_target_met: Option<bool>,
}

fn ratio(gw: f64, bare: f64) -> Option<f64> {
    (bare > 0.0).then(|| gw / bare)
}

impl Summary {
    pub(crate) fn new(reports: &[TargetReport]) -> Self {
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
            s.broadcast_deliveries_ratio = ratio(
                g.broadcast_deliveries_per_sec,
                b.broadcast_deliveries_per_sec,
            );
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
        row(
            "broadcast (deliveries/s)",
            &|f| per_sec(f.broadcast_deliveries_per_sec),
            s.broadcast_deliveries_ratio,
        );
        row(
            "broadcast p99 to-all (us)",
            &|f| us(f.broadcast_p99_time_to_all_us),
            None,
        );
        row(
            "broadcast missing",
            &|f| f.broadcast_missing.to_string(),
            None,
        );
        row("other anomalies", &|f| f.anomalies.to_string(), None);
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
