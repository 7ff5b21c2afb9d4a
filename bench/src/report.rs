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
pub(crate) fn print_target(r: &TargetReport) {
    println!();
    println!(
        "== {} {}",
        r.target.name(),
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

/// gateway/bare ratios and the targets.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    /// gateway connects/s over bare connects/s.
    pub(crate) connect_rate_ratio: Option<f64>,
    /// gateway echo msgs/s over bare echo msgs/s.
    pub(crate) echo_msgs_ratio: Option<f64>,
    /// gateway broadcast deliveries/s over bare.
    pub(crate) broadcast_deliveries_ratio: Option<f64>,
    /// gateway echo p99, microseconds.
    pub(crate) gateway_echo_p99_us: Option<u64>,
    /// `echo_msgs_ratio >= 0.8`.
    pub(crate) echo_ratio_target_met: Option<bool>,
    /// `gateway_echo_p99_us < 2000`.
    pub(crate) echo_p99_target_met: Option<bool>,
}

fn ratio(gw: f64, bare: f64) -> Option<f64> {
    (bare > 0.0).then(|| gw / bare)
}

impl Summary {
    pub(crate) fn new(reports: &[TargetReport]) -> Self {
        let find = |k: Kind| reports.iter().find(|r| r.target == k && r.error.is_none());
        let (bare, gw) = (find(Kind::Bare), find(Kind::Gateway));
        let mut s = Self::default();
        if let Some(gw) = gw {
            // A run with echo errors has no valid latency figure.
            if let Some(e) = gw.echo.as_ref().filter(|e| e.ok > 0) {
                s.gateway_echo_p99_us = Some(e.p99_us);
                s.echo_p99_target_met = Some(e.p99_us < ECHO_P99_TARGET_US && e.errors == 0);
            }
        }
        if let (Some(b), Some(g)) = (bare, gw) {
            if let (Some(bc), Some(gc)) = (&b.connect, &g.connect) {
                s.connect_rate_ratio = ratio(gc.connects_per_sec, bc.connects_per_sec);
            }
            if let (Some(be), Some(ge)) = (&b.echo, &g.echo) {
                s.echo_msgs_ratio = ratio(ge.msgs_per_sec, be.msgs_per_sec);
                s.echo_ratio_target_met = s
                    .echo_msgs_ratio
                    .map(|r| r >= ECHO_RATIO_TARGET && ge.errors == 0);
            }
            if let (Some(bb), Some(gb)) = (&b.broadcast, &g.broadcast) {
                s.broadcast_deliveries_ratio = ratio(gb.deliveries_per_sec, bb.deliveries_per_sec);
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

/// Prints the comparison (when both targets ran) and the targets.
pub(crate) fn print_summary(s: &Summary, reports: &[TargetReport]) {
    let find = |k: Kind| reports.iter().find(|r| r.target == k && r.error.is_none());
    println!();
    if let (Some(b), Some(g)) = (find(Kind::Bare), find(Kind::Gateway)) {
        println!("== gateway vs bare");
        println!(
            "   {:<28} {:>14} {:>14} {:>14}",
            "", "bare", "gateway", "gateway/bare"
        );
        let row = |name: &str, bare: String, gw: String, r: String| {
            println!("   {name:<28} {bare:>14} {gw:>14} {r:>14}");
        };
        if let (Some(bc), Some(gc)) = (&b.connect, &g.connect) {
            row(
                "connect rate (conn/s)",
                per_sec(bc.connects_per_sec),
                per_sec(gc.connects_per_sec),
                show_ratio(s.connect_rate_ratio),
            );
            row(
                "connect p99 (us)",
                int(bc.p99_us),
                int(gc.p99_us),
                String::new(),
            );
        }
        if let (Some(be), Some(ge)) = (&b.echo, &g.echo) {
            row(
                "echo (msgs/s)",
                per_sec(be.msgs_per_sec),
                per_sec(ge.msgs_per_sec),
                show_ratio(s.echo_msgs_ratio),
            );
            row(
                "echo p50 (us)",
                int(be.p50_us),
                int(ge.p50_us),
                String::new(),
            );
            row(
                "echo p99 (us)",
                int(be.p99_us),
                int(ge.p99_us),
                String::new(),
            );
        }
        if let (Some(bl), Some(gl)) = (&b.latency, &g.latency) {
            row(
                "latency 1 conn p50 (us)",
                int(bl.p50_us),
                int(gl.p50_us),
                String::new(),
            );
            row(
                "latency 1 conn p99 (us)",
                int(bl.p99_us),
                int(gl.p99_us),
                String::new(),
            );
        }
        if let (Some(bb), Some(gb)) = (&b.broadcast, &g.broadcast) {
            row(
                "broadcast (deliveries/s)",
                per_sec(bb.deliveries_per_sec),
                per_sec(gb.deliveries_per_sec),
                show_ratio(s.broadcast_deliveries_ratio),
            );
            row(
                "broadcast p99 to-all (us)",
                int(bb.p99_time_to_all_us),
                int(gb.p99_time_to_all_us),
                String::new(),
            );
        }
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
        s.gateway_echo_p99_us
            .map_or_else(|| "n/a".to_owned(), |us| format!("{} us", int(us)))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
    }
}
