//! `switchboard-bench`: the Switchboard local gateway (running the example
//! chat app) against a bare tokio-tungstenite server, over loopback, in one run.
//!
//! See `bench/README.md` and `--help`.

mod bare;
mod client;
mod console;
mod gateway;
mod history;
mod idle;
mod report;
mod scenarios;
mod stats;

use std::{
    io::{Read, Write},
    process::ExitCode,
    time::Duration,
};

use serde::Serialize;
use tokio::{
    runtime::{Builder, Runtime},
    sync::oneshot,
    task::JoinHandle,
    time::timeout,
};

use crate::{
    client::Endpoint,
    idle::IdleReport,
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
                          broadcast to 100 and 1000 clients, idle up to 2000)
    --only bare|gateway   run one target only
    --json                also print one JSON object with every figure at the end
    --rounds N            run every scenario N times, alternating which target
                          goes first; the comparison uses medians (default: 3,
                          1 with --quick)
    --server-threads N    worker threads of the servers' runtime (default: cores)
    --client-threads N    worker threads of the load generator's runtime (default: cores)
    --no-idle             skip the idle-memory scenario
    --console             only the console scenario (below), gateway only
    --history             instead of the above: room send throughput on the
                          gateway with room history off vs on (alternating
                          rounds, the ratio of the medians), and the resume
                          replay rate for 1,000 missed frames
    --serve bare|gateway  (internal) run one server in this process, print
                          `LISTENING <url>`, stop when stdin closes
    -h, --help            this text

SCENARIOS (per target, 127.0.0.1 only):
    connect     N simultaneous upgrades (full: 1000): connects/s, failures,
                p50/p99 upgrade time; then all closed
    echo        100 connections x 100 messages, closed loop, 64-byte data:
                msgs/s, p50/p99 round trip, errors
    latency     (extra) echo over 1 connection x 2000 messages: the round trip
                without queueing behind 99 other connections
    broadcast   500 and 5000 clients; one of them sends broadcasts in two phases:
                window 1 (20 broadcasts, each once all clients got the
                previous): p99 time-to-all; window 16 (up to 16 broadcasts in
                flight, 200,000 deliveries): deliveries/s; missing deliveries
    console     (only with --console) echo with no console vs with a console
                whose live stream is never read, alternating, --rounds N each
                way (default 5): both msgs/s (medians) and their ratio
    idle        (once per target, after the rounds) the server alone in a child
                process; 1000, 5000, 10000 idle connections opened and kept:
                the child's RSS at each step, RSS per 1000 connections

OPEN FILES:
    Client and server run in this one process, so the full run needs about
    2 x 5000 sockets plus some (the idle scenario: 10000 in each process). If connections fail with \"Too many open files\",
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
    /// One broadcast scenario per entry.
    broadcast_clients: &'static [usize],
    /// Broadcasts of the time-to-all phase (window 1).
    broadcast_serial_messages: usize,
    /// Broadcasts in flight in the throughput phase.
    broadcast_window: usize,
    /// Deliveries the throughput phase aims at (broadcasts = this / clients,
    /// clamped to 20..=400).
    broadcast_window_deliveries: usize,
    /// Idle connections at each RSS reading.
    idle_steps: &'static [usize],
}

impl Sizes {
    const FULL: Self = Self {
        connect: 1000,
        echo_connections: 100,
        echo_messages: 100,
        latency_messages: 2000,
        broadcast_clients: &[500, 5000],
        broadcast_serial_messages: 20,
        broadcast_window: 16,
        broadcast_window_deliveries: 200_000,
        idle_steps: &[1000, 5000, 10_000],
    };
    const QUICK: Self = Self {
        connect: 200,
        echo_connections: 20,
        echo_messages: 50,
        latency_messages: 200,
        broadcast_clients: &[100, 1000],
        broadcast_serial_messages: 5,
        broadcast_window: 16,
        broadcast_window_deliveries: 20_000,
        idle_steps: &[1000, 2000],
    };

    /// The broadcast phases for `clients`: (window, broadcasts).
    fn broadcast_phases(&self, clients: usize) -> [(usize, usize); 2] {
        let windowed = (self.broadcast_window_deliveries / clients.max(1)).clamp(20, 400);
        [
            (1, self.broadcast_serial_messages),
            (self.broadcast_window, windowed),
        ]
    }

    /// Sockets this process holds at the peak (both ends of every connection;
    /// the idle scenario's server sockets are in the child process).
    fn peak_sockets(&self) -> u64 {
        let broadcast = self.broadcast_clients.iter().copied().max().unwrap_or(0);
        let idle = self.idle_steps.iter().copied().max().unwrap_or(0);
        let peak = self
            .connect
            .max(self.echo_connections)
            .max(broadcast)
            .max(idle.div_ceil(2));
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
    console: bool,
    only: Option<Kind>,
    serve: Option<Kind>,
    idle: bool,
    history: bool,
    json: bool,
    rounds: Option<usize>,
    server_threads: usize,
    client_threads: usize,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let mut opts = Options {
        quick: false,
        console: false,
        only: None,
        serve: None,
        idle: true,
        history: false,
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
            "--console" => opts.console = true,
            "--json" => opts.json = true,
            "--no-idle" => opts.idle = false,
            "--history" => opts.history = true,
            "--only" | "--serve" => {
                let kind = match args.next().as_deref() {
                    Some("bare") => Kind::Bare,
                    Some("gateway") => Kind::Gateway,
                    other => {
                        return Err(format!(
                            "{arg} takes `bare` or `gateway`, got {}",
                            other.unwrap_or("nothing")
                        ));
                    }
                };
                if arg == "--only" {
                    opts.only = Some(kind);
                } else {
                    opts.serve = Some(kind);
                }
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

    /// Where it listens.
    pub(crate) fn url(&self) -> &str {
        &self.url
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
    /// One per entry of the broadcast sizes.
    broadcast: Vec<BroadcastReport>,
}

impl TargetReport {
    /// Whether any connection failed with "Too many open files".
    fn emfile(&self) -> bool {
        self.connect.as_ref().is_some_and(|c| c.emfile)
            || self.echo.as_ref().is_some_and(|e| e.emfile)
            || self.latency.as_ref().is_some_and(|e| e.emfile)
            || self.broadcast.iter().any(|b| b.emfile)
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
            broadcast: Vec::new(),
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
        let mut broadcast = Vec::new();
        for &clients in sizes.broadcast_clients {
            let phases = sizes.broadcast_phases(clients);
            eprintln!(
                "[{}] broadcast: {clients} clients; {} broadcasts one at a time, then {} with {} in flight",
                kind.name(),
                phases[0].1,
                phases[1].1,
                phases[1].0,
            );
            broadcast.push(scenarios::broadcast(&endpoint, clients, &phases).await);
        }
        TargetReport {
            target: kind,
            round,
            url: Some(url.clone()),
            error: None,
            connect: Some(connect),
            echo: Some(echo),
            latency: Some(latency),
            broadcast,
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

/// `--serve`: one server in this process until stdin closes (the idle
/// scenario's child).
fn serve(kind: Kind, threads: usize) -> ExitCode {
    let rt = match runtime("bench-server", threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot build the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let running = match kind {
        Kind::Bare => bare::launch(&rt),
        Kind::Gateway => gateway::launch(&rt),
    };
    let running = match running {
        Ok(running) => running,
        Err(e) => {
            eprintln!("error: {} could not start: {e}", kind.name());
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    if writeln!(out, "{}{}", idle::LISTENING, running.url)
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // The parent closes our stdin (or dies) when it is done.
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    let stopped = rt.block_on(running.stop());
    rt.shutdown_timeout(Duration::from_secs(2));
    if stopped {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--console`: the console scenario alone (see `console.rs`).
fn run_console(opts: &Options, sizes: Sizes) -> ExitCode {
    match (
        runtime("bench-server", opts.server_threads),
        runtime("bench-client", opts.client_threads),
    ) {
        (Ok(server_rt), Ok(client_rt)) => {
            let rounds = opts.rounds.unwrap_or(if opts.quick { 1 } else { 5 });
            let code = console::run(rounds, sizes.echo_connections, &server_rt, &client_rt);
            server_rt.shutdown_timeout(Duration::from_secs(2));
            client_rt.shutdown_timeout(Duration::from_secs(2));
            code
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: cannot build the tokio runtimes: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--history`: the room history scenarios alone.
fn run_history(opts: &Options) -> ExitCode {
    let rt = match runtime("bench-history", opts.server_threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot build the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sizes = if opts.quick {
        history::HistorySizes::QUICK
    } else {
        history::HistorySizes::FULL
    };
    let rounds = opts.rounds.unwrap_or(if opts.quick { 2 } else { 4 });
    let result = rt.block_on(history::run(sizes, rounds));
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
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
    if let Some(kind) = opts.serve {
        return serve(kind, opts.server_threads);
    }
    if opts.history {
        return run_history(&opts);
    }
    let sizes = if opts.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };

    if opts.console {
        return run_console(&opts, sizes);
    }

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
    let mut idle_reports: Vec<(Kind, IdleReport)> = Vec::new();
    let ran_ok = !reports.iter().any(|r| r.error.is_some() || r.emfile());
    if opts.idle && ran_ok {
        for &kind in &kinds {
            eprintln!(
                "[{}] idle: server in a child process, steps {:?}",
                kind.name(),
                sizes.idle_steps
            );
            let r = client_rt.block_on(idle::measure(kind, opts.server_threads, sizes.idle_steps));
            report::print_idle(kind, &r);
            idle_reports.push((kind, r));
        }
    }
    let summary = report::Summary::new(&reports, &idle_reports);
    report::print_summary(&summary);

    if opts.json {
        let all = serde_json::json!({
            "quick": opts.quick,
            "rounds": rounds,
            "sizes": sizes,
            "server_threads": opts.server_threads,
            "client_threads": opts.client_threads,
            "targets": reports,
            "idle": idle_reports,
            "summary": summary,
        });
        println!("{all}");
    }

    // Let connection tasks that are still winding down go.
    server_rt.shutdown_timeout(Duration::from_secs(2));
    client_rt.shutdown_timeout(Duration::from_secs(2));

    let idle_failed = idle_reports
        .iter()
        .any(|(_, r)| r.error.is_some() || r.emfile);
    if idle_failed || reports.iter().any(|r| r.error.is_some() || r.emfile()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
