//! `switchboard-bench`: the Switchboard local gateway (running the example
//! chat app) against a bare tokio-tungstenite server, over loopback, in one run.
//!
//! See `bench/README.md` and `--help`.

mod bare;
mod client;
mod gateway;
mod report;
mod scenarios;
mod stats;

use std::{process::ExitCode, time::Duration};

use serde::Serialize;
use tokio::{
    runtime::{Builder, Runtime},
    sync::oneshot,
    task::JoinHandle,
    time::timeout,
};

use crate::{
    client::Endpoint,
    scenarios::{BroadcastReport, ConnectReport, EchoReport},
};

/// Errors inside this binary.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
switchboard-bench: the Switchboard local gateway vs a bare tokio-tungstenite server

USAGE:
    cargo run -p switchboard-bench --release -- [OPTIONS]

OPTIONS:
    --quick               smaller run for smoke tests (200 connects, 20x50 echo,
                          100 clients x 5 broadcasts)
    --only bare|gateway   run one target only
    --json                also print one JSON object with every figure at the end
    --rounds N            run every scenario N times, alternating which target
                          goes first; the comparison uses medians (default: 3,
                          1 with --quick)
    --server-threads N    worker threads of the servers' runtime (default: cores)
    --client-threads N    worker threads of the load generator's runtime (default: cores)
    -h, --help            this text

SCENARIOS (per target, 127.0.0.1 only):
    connect     N simultaneous upgrades (full: 1000): connects/s, failures,
                p50/p99 upgrade time; then all closed
    echo        100 connections x 100 messages, closed loop, 64-byte data:
                msgs/s, p50/p99 round trip, errors
    latency     (extra) echo over 1 connection x 2000 messages: the round trip
                without queueing behind 99 other connections
    broadcast   500 clients, one of them sends 20 broadcasts one after the other,
                each once all clients got the previous: deliveries/s,
                p99 time-to-all, missing deliveries

OPEN FILES:
    Client and server run in this one process, so the full run needs about
    2 x 1000 sockets plus some. If connections fail with \"Too many open files\",
    raise the limit in the shell first:
        ulimit -n 65536
";

/// Scenario sizes.
#[derive(Debug, Clone, Copy, Serialize)]
struct Sizes {
    connect: usize,
    echo_connections: usize,
    echo_messages: usize,
    latency_messages: usize,
    broadcast_clients: usize,
    broadcast_messages: usize,
}

impl Sizes {
    const FULL: Self = Self {
        connect: 1000,
        echo_connections: 100,
        echo_messages: 100,
        latency_messages: 2000,
        broadcast_clients: 500,
        broadcast_messages: 20,
    };
    const QUICK: Self = Self {
        connect: 200,
        echo_connections: 20,
        echo_messages: 50,
        latency_messages: 200,
        broadcast_clients: 100,
        broadcast_messages: 5,
    };

    /// Sockets this process holds at the peak (both ends of every connection).
    fn peak_sockets(&self) -> u64 {
        let peak = self
            .connect
            .max(self.echo_connections)
            .max(self.broadcast_clients);
        2 * peak as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Bare,
    Gateway,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Gateway => "gateway",
        }
    }
}

struct Options {
    quick: bool,
    only: Option<Kind>,
    json: bool,
    rounds: Option<usize>,
    server_threads: usize,
    client_threads: usize,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let mut opts = Options {
        quick: false,
        only: None,
        json: false,
        rounds: None,
        server_threads: cores,
        client_threads: cores,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => opts.quick = true,
            "--json" => opts.json = true,
            "--only" => {
                opts.only = Some(match args.next().as_deref() {
                    Some("bare") => Kind::Bare,
                    Some("gateway") => Kind::Gateway,
                    other => {
                        return Err(format!(
                            "--only takes `bare` or `gateway`, got {}",
                            other.unwrap_or("nothing")
                        ));
                    }
                });
            }
            "--server-threads" | "--client-threads" | "--rounds" => {
                let n = args
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{arg} takes a positive number"))?;
                match arg.as_str() {
                    "--server-threads" => opts.server_threads = n,
                    "--client-threads" => opts.client_threads = n,
                    _ => opts.rounds = Some(n),
                }
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Some(opts))
}

/// A server running on the servers' runtime.
pub(crate) struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    done: JoinHandle<()>,
}

impl Running {
    pub(crate) fn new(url: String, stop: oneshot::Sender<()>, done: JoinHandle<()>) -> Self {
        Self { url, stop, done }
    }

    /// Asks the server to stop and waits (bounded) for it; `true` if it did.
    async fn stop(self) -> bool {
        // The server may have stopped on its own already.
        let _ = self.stop.send(());
        matches!(
            timeout(Duration::from_secs(10), self.done).await,
            Ok(Ok(()))
        )
    }
}

/// Everything measured for one target.
#[derive(Debug, Serialize)]
pub(crate) struct TargetReport {
    target: Kind,
    round: usize,
    url: Option<String>,
    error: Option<String>,
    connect: Option<ConnectReport>,
    echo: Option<EchoReport>,
    /// Echo over a single connection: round trip without queueing.
    latency: Option<EchoReport>,
    broadcast: Option<BroadcastReport>,
}

impl TargetReport {
    /// Whether any connection failed with "Too many open files".
    fn emfile(&self) -> bool {
        self.connect.as_ref().is_some_and(|c| c.emfile)
            || self.echo.as_ref().is_some_and(|e| e.emfile)
            || self.latency.as_ref().is_some_and(|e| e.emfile)
            || self.broadcast.as_ref().is_some_and(|b| b.emfile)
    }

    fn failed(target: Kind, round: usize, url: Option<String>, error: String) -> Self {
        Self {
            target,
            round,
            url,
            error: Some(error),
            connect: None,
            echo: None,
            latency: None,
            broadcast: None,
        }
    }
}

fn runtime(name: &str, threads: usize) -> std::io::Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
}

fn run_target(
    kind: Kind,
    round: usize,
    sizes: Sizes,
    server_rt: &Runtime,
    client_rt: &Runtime,
) -> TargetReport {
    eprintln!("[{}] round {round}: starting server", kind.name());
    let launched = match kind {
        Kind::Bare => bare::launch(server_rt),
        Kind::Gateway => gateway::launch(server_rt),
    };
    let running = match launched {
        Ok(running) => running,
        Err(e) => {
            return TargetReport::failed(kind, round, None, format!("could not start: {e}"));
        }
    };
    let url = running.url.clone();
    eprintln!("[{}] listening on {url}", kind.name());
    let report = client_rt.block_on(async {
        let endpoint = match Endpoint::resolve(&url).await {
            Ok(endpoint) => endpoint,
            Err(e) => return TargetReport::failed(kind, round, Some(url.clone()), e.to_string()),
        };
        eprintln!(
            "[{}] connect: {} simultaneous upgrades",
            kind.name(),
            sizes.connect
        );
        let connect = scenarios::connect(&endpoint, sizes.connect).await;
        eprintln!(
            "[{}] echo: {} connections x {} messages",
            kind.name(),
            sizes.echo_connections,
            sizes.echo_messages
        );
        let echo = scenarios::echo(&endpoint, sizes.echo_connections, sizes.echo_messages).await;
        eprintln!(
            "[{}] latency: 1 connection x {} messages",
            kind.name(),
            sizes.latency_messages
        );
        let latency = scenarios::echo(&endpoint, 1, sizes.latency_messages).await;
        eprintln!(
            "[{}] broadcast: {} clients x {} broadcasts",
            kind.name(),
            sizes.broadcast_clients,
            sizes.broadcast_messages
        );
        let broadcast =
            scenarios::broadcast(&endpoint, sizes.broadcast_clients, sizes.broadcast_messages)
                .await;
        TargetReport {
            target: kind,
            round,
            url: Some(url.clone()),
            error: None,
            connect: Some(connect),
            echo: Some(echo),
            latency: Some(latency),
            broadcast: Some(broadcast),
        }
    });
    if !server_rt.block_on(running.stop()) {
        eprintln!("[{}] warning: server did not stop within 10 s", kind.name());
    }
    report
}

/// The soft RLIMIT_NOFILE, read from /proc (no libc, no unsafe).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sizes = if opts.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };

    if let Some(limit) = open_files_limit() {
        let needed = sizes.peak_sockets() + 256;
        if limit < needed {
            eprintln!(
                "warning: the open-files limit is {limit}, this run needs about {needed}; \
                 connections will fail with \"Too many open files\". Run `ulimit -n 65536` first."
            );
        }
    }

    let (server_rt, client_rt) = match (
        runtime("bench-server", opts.server_threads),
        runtime("bench-client", opts.client_threads),
    ) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: cannot build the tokio runtimes: {e}");
            return ExitCode::FAILURE;
        }
    };

    let kinds: Vec<Kind> = match opts.only {
        Some(kind) => vec![kind],
        None => vec![Kind::Bare, Kind::Gateway],
    };
    let rounds = opts.rounds.unwrap_or(if opts.quick { 1 } else { 3 });
    let mut reports = Vec::new();
    'rounds: for round in 1..=rounds {
        // Alternate the order so that drift (warming, noisy neighbours)
        // does not always favour the same target.
        let order: Vec<Kind> = if round % 2 == 1 {
            kinds.clone()
        } else {
            kinds.iter().rev().copied().collect()
        };
        for kind in order {
            let report = run_target(kind, round, sizes, &server_rt, &client_rt);
            report::print_target(&report, rounds);
            let fatal = report.error.is_some() || report.emfile();
            reports.push(report);
            if fatal {
                eprintln!("stopping: the remaining rounds would fail the same way");
                break 'rounds;
            }
        }
    }
    let summary = report::Summary::new(&reports);
    report::print_summary(&summary);

    if opts.json {
        let all = serde_json::json!({
            "quick": opts.quick,
            "rounds": rounds,
            "sizes": sizes,
            "server_threads": opts.server_threads,
            "client_threads": opts.client_threads,
            "targets": reports,
            "summary": summary,
        });
        println!("{all}");
    }

    // Let connection tasks that are still winding down go.
    server_rt.shutdown_timeout(Duration::from_secs(2));
    client_rt.shutdown_timeout(Duration::from_secs(2));

    if reports.iter().any(|r| r.error.is_some() || r.emfile()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
