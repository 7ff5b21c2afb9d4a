//! Memory per idle connection: the server runs in a child process (this binary
//! re-executed with `--serve bare|gateway`), so the load generator's memory does
//! not count and client and server sockets do not share one open-files limit.
//! The parent opens idle connections in steps (full upgrade, the gateway's dev
//! authorizer and `$connect` included), keeps them open, and reads the child's
//! `VmRSS` from `/proc/<pid>/status` after each step.

use std::{process::Stdio, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};

use crate::{
    Kind,
    client::{self, Endpoint, Ws},
};

/// Handshakes in flight while opening the idle connections.
const SETUP_CONCURRENCY: usize = 64;
/// Pause before reading the RSS, so the server has finished its work.
const SETTLE: Duration = Duration::from_millis(500);
/// Connections opened and closed before the baseline reading, so the baseline
/// includes the runtime's threads and the first connection's one-time setup.
const WARM_UP: usize = 64;
/// A command prefix for the server process (a profiler), split on whitespace.
pub(crate) const WRAPPER_VAR: &str = "SWITCHBOARD_BENCH_SERVER_WRAPPER";
/// The line the child prints once it listens.
pub(crate) const LISTENING: &str = "LISTENING ";

/// RSS at one step.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct IdleStep {
    /// Idle connections open.
    pub(crate) connections: usize,
    /// The server process's resident set, KiB.
    pub(crate) rss_kib: u64,
    /// `(rss - baseline) / connections * 1000`, KiB.
    pub(crate) kib_per_1000: f64,
}

/// Results of the idle-memory scenario for one target.
#[derive(Debug, Default, Serialize)]
pub(crate) struct IdleReport {
    /// The server's RSS with no connection open (after a warm-up), KiB.
    pub(crate) baseline_kib: u64,
    /// One entry per step that could be opened in full.
    pub(crate) steps: Vec<IdleStep>,
    /// Connections that could not be opened.
    pub(crate) setup_failures: usize,
    /// Failure reasons and counts.
    pub(crate) failure_reasons: Vec<(String, usize)>,
    /// Whether a failure was "Too many open files".
    pub(crate) emfile: bool,
    /// Why the scenario could not run, if it could not.
    pub(crate) error: Option<String>,
}

/// `VmRSS` of a process, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts `switchboard-bench --serve <kind>` and reads its URL.
async fn spawn_server(kind: Kind, threads: usize) -> Result<(Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let args = [
        "--serve".to_owned(),
        kind.name().to_owned(),
        "--server-threads".to_owned(),
        threads.to_string(),
    ];
    // A profiler to run the server under, e.g. `valgrind --tool=massif`.
    let wrapper = std::env::var(WRAPPER_VAR).unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the server process: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = match timeout(Duration::from_secs(30), lines.next_line()).await {
        Ok(Ok(Some(line))) => match line.strip_prefix(LISTENING) {
            Some(url) => url.trim().to_owned(),
            None => return Err(format!("unexpected line from the server process: {line}")),
        },
        Ok(Ok(None)) => return Err("the server process exited before listening".to_owned()),
        Ok(Err(e)) => return Err(format!("reading the server process: {e}")),
        Err(_) => return Err("the server process did not listen within 30 s".to_owned()),
    };
    Ok((child, url))
}

/// Stops the child: closing its stdin asks it to shut down; killed after 10 s.
async fn stop_server(mut child: Child) {
    drop(child.stdin.take());
    if !matches!(
        timeout(Duration::from_secs(10), child.wait()).await,
        Ok(Ok(_))
    ) {
        let _ = child.kill().await;
    }
}

/// Opens idle connections up to each of `steps` (ascending) against a fresh
/// server process of `kind`, reading its RSS at each step.
pub(crate) async fn measure(kind: Kind, threads: usize, steps: &[usize]) -> IdleReport {
    let mut report = IdleReport::default();
    let (child, url) = match spawn_server(kind, threads).await {
        Ok(started) => started,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let Some(pid) = child.id() else {
        report.error = Some("the server process has no pid".to_owned());
        stop_server(child).await;
        return report;
    };
    let endpoint = match Endpoint::resolve(&url).await {
        Ok(endpoint) => endpoint,
        Err(e) => {
            report.error = Some(e.to_string());
            stop_server(child).await;
            return report;
        }
    };
    let (warm, _) = client::connect_many(&endpoint, WARM_UP, SETUP_CONCURRENCY).await;
    client::close_all(warm).await;
    tokio::time::sleep(SETTLE).await;
    let Some(baseline) = rss_kib(pid) else {
        report.error = Some(format!("cannot read /proc/{pid}/status"));
        stop_server(child).await;
        return report;
    };
    report.baseline_kib = baseline;

    let mut open: Vec<Ws> = Vec::new();
    for &target in steps {
        let want = target.saturating_sub(open.len());
        let (more, failures) = open_idle(&endpoint, want).await;
        open.extend(more);
        report.setup_failures += failures.count;
        report.emfile |= failures.emfile;
        for (reason, n) in failures.reasons {
            report.failure_reasons.push((reason, n));
        }
        if open.len() < target {
            eprintln!(
                "[{}] idle: only {} of {target} connections opened; stopping here",
                kind.name(),
                open.len()
            );
            break;
        }
        tokio::time::sleep(SETTLE).await;
        let Some(rss) = rss_kib(pid) else {
            report.error = Some(format!("cannot read /proc/{pid}/status"));
            break;
        };
        let grown = rss.saturating_sub(baseline) as f64;
        report.steps.push(IdleStep {
            connections: target,
            rss_kib: rss,
            kib_per_1000: if target > 0 {
                grown / target as f64 * 1000.0
            } else {
                0.0
            },
        });
        eprintln!(
            "[{}] idle: {target} connections, server RSS {:.1} MiB",
            kind.name(),
            rss as f64 / 1024.0
        );
    }
    client::close_all(open).await;
    stop_server(child).await;
    report
}

async fn open_idle(endpoint: &Arc<Endpoint>, n: usize) -> (Vec<Ws>, client::Failures) {
    if n == 0 {
        return (Vec::new(), client::Failures::default());
    }
    client::connect_many(endpoint, n, SETUP_CONCURRENCY).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss() {
        let rss = rss_kib(std::process::id());
        assert!(rss.is_some_and(|kib| kib > 0), "{rss:?}");
    }
}
