//! The command line of a service's executable (`cargo run -- ...`): the local gateway
//! and the subcommands that print what the registry knows.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use switchboard_core::names::env;
use switchboard_core::origin::OriginSecrets;
use switchboard_local::LocalConfig;
use switchboard_local::exposure::AdminSecret;
use switchboard_local::limits::{QuotaPeriod, UsagePlan};
use switchboard_local::sigv4::SigV4Verifier;

use crate::App;
use crate::runtime::{async_runtime, fail, init_tracing};

/// Parses the command line and runs it.
pub(crate) fn run(app: App) -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(Box::new(cli.serve))) {
        Command::Manifest { sha256 } => match app.manifest() {
            Ok(m) if sha256 => {
                println!("{}", m.manifest_hash());
                ExitCode::SUCCESS
            }
            Ok(m) => {
                println!("{}", m.to_json_pretty());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        #[cfg(feature = "contract")]
        Command::Asyncapi => match app.asyncapi() {
            Ok(doc) => {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        #[cfg(feature = "contract")]
        Command::ClientTs => match app.client_ts() {
            Ok(module) => {
                print!("{module}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Routes => match app.manifest() {
            Ok(m) => {
                for r in &m.routes {
                    let origin = if r.builtin {
                        "built-in".to_owned()
                    } else {
                        format!("{}::{} ({}:{})", r.module, r.function, r.file, r.line)
                    };
                    println!("{:<16} {origin}", r.key);
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Serve(args) => serve(app, *args),
    }
}

fn serve(app: App, args: ServeArgs) -> ExitCode {
    init_tracing();
    let runtime = match async_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let config = match args.config() {
            Ok(config) => config,
            Err(e) => return fail(&e),
        };
        let app = if args.dev_auth { app.dev_auth() } else { app };
        let app = match args.store {
            StoreKind::Memory => app,
            StoreKind::Dynamodb => match dynamodb_store(app, &args).await {
                Ok(app) => app,
                Err(e) => return fail(&e),
            },
        };
        let app = with_local_fanout(app, args.fanout_threshold);
        let fanout = app.spec().send.sharding.as_ref().map(|s| s.threshold);
        let gateway = match app.serve_local(config).await {
            Ok(g) => g,
            Err(e) => return fail(&e),
        };
        print_banner(&gateway, args.dev_auth, fanout);
        for line in gateway.exposure_lines() {
            println!("{line}");
        }
        println!("Ctrl-C (or SIGTERM) stops it.");
        gateway.run_until_ctrl_c().await;
        ExitCode::SUCCESS
    })
}

/// `--fanout-threshold`: sends above it go through the embedded fan-out queue and the
/// in-process consumers, as the `fanout` function takes them on AWS; 0 keeps every send
/// inline. An app that configured its own sharding keeps it.
fn with_local_fanout(app: App, threshold: usize) -> App {
    if app.spec().send.sharding.is_some() || threshold == 0 {
        app
    } else {
        app.fanout_threshold(threshold)
    }
}

fn print_banner(gateway: &switchboard_local::LocalGateway, dev_auth: bool, fanout: Option<usize>) {
    println!("Switchboard local gateway");
    println!("  web page     {}/", gateway.http_url());
    if let Some(http) = gateway.http_api_url() {
        println!("  HTTP API     {http}/... (Authorization: Bearer ID_TOKEN)");
    }
    if dev_auth {
        println!("  WebSocket    {}?user=NAME", gateway.ws_url());
    } else {
        println!("  WebSocket    {}?token=ID_TOKEN", gateway.ws_url());
        println!(
            "  sign in      curl -s -XPOST {}/local/token -d '{{\"username\":\"alice\"}}'",
            gateway.http_url()
        );
    }
    println!(
        "  @connections {}/@connections/{{id}}",
        gateway.management_url()
    );
    println!("  manifest     {}/local/manifest", gateway.http_url());
    println!("  queues       {}/local/queues", gateway.http_url());
    println!("  stats        {}/local/stats", gateway.http_url());
    println!("  console      {}/local/", gateway.http_url());
    match fanout {
        Some(n) => println!(
            "  fan-out      sends to more than {n} recipients are sharded through the embedded fan-out queue"
        ),
        None => println!("  fan-out      every send inline (--fanout-threshold 0)"),
    }
}

/// `--store dynamodb`: the connection store in DynamoDB (tables created at an
/// `--endpoint` when missing).
async fn dynamodb_store(app: App, args: &ServeArgs) -> Result<App, String> {
    use switchboard_aws::dynamodb::DynamoStore;
    use switchboard_aws::{AwsSettings, ConfigError};
    use switchboard_core::names::env;
    use switchboard_core::names::table::TableNames;
    let settings = match &args.endpoint {
        Some(endpoint) => AwsSettings::local(endpoint.clone()),
        None => {
            let mut problems = Vec::new();
            AwsSettings::from_env(&mut problems)
                .filter(|_| problems.is_empty())
                .ok_or_else(|| ConfigError { problems }.to_string())?
        }
    };
    let defaults = TableNames::for_app(&app.spec().name, &args.stage);
    let tables = TableNames {
        connections: std::env::var(env::CONNECTIONS_TABLE).unwrap_or(defaults.connections),
        rooms: std::env::var(env::ROOMS_TABLE).unwrap_or(defaults.rooms),
    };
    let store = DynamoStore::from_settings(&settings, tables.clone());
    if args.endpoint.is_some() {
        store
            .create_tables()
            .await
            .map_err(|e| format!("could not create the tables at the endpoint: {e}"))?;
    }
    println!(
        "  store        DynamoDB tables {} and {}",
        tables.connections, tables.rooms
    );
    let app = app.store(store);
    if app.spec().history.is_empty() {
        return Ok(app);
    }
    let history_table = std::env::var(env::HISTORY_TABLE).unwrap_or_else(|_| {
        switchboard_core::names::table::history_table_for_app(&app.spec().name, &args.stage)
    });
    let history =
        switchboard_aws::history::DynamoHistory::from_settings(&settings, history_table.clone());
    if args.endpoint.is_some() {
        history
            .create_table()
            .await
            .map_err(|e| format!("could not create the history table at the endpoint: {e}"))?;
    }
    println!("  history      DynamoDB table {history_table}");
    Ok(app.history_store(history))
}

#[derive(Parser, Debug)]
#[command(about = "A Switchboard service: runs the local gateway, or prints its manifest.")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of the default command, `serve`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the local gateway (the default).
    Serve(Box<ServeArgs>),
    /// Print the route registry as JSON (what the deploy program reads).
    Manifest {
        /// Print only the manifest's SHA-256 instead, for the `manifest.sha256` file the
        /// deploy program compares with its own (see the README's deploy section).
        #[arg(long)]
        sha256: bool,
    },
    /// List the routes and where they are declared.
    Routes,
    /// Print the AsyncAPI 3.0 document of the WebSocket API (JSON).
    #[cfg(feature = "contract")]
    Asyncapi,
    /// Print the typed TypeScript client module (message types and a small client).
    #[cfg(feature = "contract")]
    #[command(name = "client-ts")]
    ClientTs,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    addr: IpAddr,
    /// Port to bind (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Stage name.
    #[arg(long, default_value = "ws")]
    stage: String,
    /// Idle timeout in seconds.
    #[arg(long, default_value_t = 600)]
    idle_timeout: u64,
    /// Maximum connection age in seconds.
    #[arg(long, default_value_t = 7200)]
    max_age: u64,
    /// Connection store: embedded (`memory`) or `dynamodb` (tables from
    /// SWITCHBOARD_CONNECTIONS_TABLE / SWITCHBOARD_ROOMS_TABLE, else `{app}-{stage}-websocket-*`).
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    store: StoreKind,
    /// Accept `?user=NAME` identities without tokens (the development authorizer),
    /// instead of tokens from the local issuer.
    #[arg(long)]
    dev_auth: bool,
    /// Where the local issuer keeps its key (tokens survive restarts).
    #[arg(long, default_value = switchboard_local::issuer::DEFAULT_DIR)]
    state_dir: std::path::PathBuf,
    /// DynamoDB endpoint for `--store dynamodb` (moto, DynamoDB Local); the tables are
    /// created there when missing, with dummy credentials. Without it, real AWS with
    /// credentials and region from the environment.
    #[arg(long)]
    endpoint: Option<String>,
    /// Accept unsigned `@connections` requests (as before SigV4 was checked locally).
    /// Refused unless the address is loopback. Without it, requests must be SigV4-signed
    /// for `execute-api` with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (else the local
    /// key AKIDLOCAL / local-secret) in AWS_REGION (else us-east-1).
    #[arg(long)]
    no_sigv4: bool,
    /// Let other hosts use /local/* (token, connections, queues, manifest, stats) with a
    /// one-time admin secret, printed at start, as `Authorization: Bearer <secret>`.
    /// Without it, /local/* answers loopback clients only.
    #[arg(long)]
    expose_local_endpoints: bool,
    /// Allow --dev-auth on an address other than loopback (anyone who can reach it can
    /// connect as any user).
    #[arg(long)]
    force_dev_auth: bool,
    /// CloudFront's origin secret, reproduced: upgrades and /http/* calls without it in
    /// the x-switchboard-origin header get 403. Default: SWITCHBOARD_ORIGIN_SECRET from
    /// the environment, else no check.
    #[arg(long)]
    origin_secret: Option<String>,
    /// A previous origin secret, accepted too (a rotation). Default:
    /// SWITCHBOARD_ORIGIN_SECRET_PREVIOUS from the environment.
    #[arg(long)]
    origin_secret_previous: Option<String>,
    /// An API key that upgrades may present in x-api-key, needed when a route has
    /// `api_key = true` (repeat the flag for more keys).
    #[arg(long = "api-key", value_name = "KEY")]
    api_keys: Vec<String>,
    /// The usage plan's steady rate per key, requests/s (default: none).
    #[arg(long)]
    usage_plan_rate: Option<f64>,
    /// The usage plan's burst per key (default: the rate).
    #[arg(long)]
    usage_plan_burst: Option<u32>,
    /// The usage plan's quota per key and --usage-plan-quota-period (default: none).
    #[arg(long)]
    usage_plan_quota: Option<u64>,
    /// DAY, WEEK or MONTH (UTC).
    #[arg(long, default_value = "DAY")]
    usage_plan_quota_period: String,
    /// Sends to more recipients than this are sharded through the embedded fan-out queue
    /// and its in-process consumers, as the `fanout` function does on AWS (0: every send
    /// inline). An app that calls `App::sharding` or `App::fanout_threshold` keeps its own.
    #[arg(long, default_value_t = switchboard_core::names::fanout::DEFAULT_THRESHOLD)]
    fanout_threshold: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Memory,
    Dynamodb,
}

impl ServeArgs {
    fn config(&self) -> Result<LocalConfig, String> {
        let admin_secret = if self.expose_local_endpoints {
            Some(AdminSecret::generate().map_err(|e| e.to_string())?)
        } else {
            None
        };
        let from_env = |name: &str| std::env::var(name).ok();
        let origin_secrets = OriginSecrets::new(
            self.origin_secret
                .clone()
                .or_else(|| from_env(env::ORIGIN_SECRET))
                .as_deref(),
            self.origin_secret_previous
                .clone()
                .or_else(|| from_env(env::ORIGIN_SECRET_PREVIOUS))
                .as_deref(),
        );
        let period: QuotaPeriod = self.usage_plan_quota_period.parse()?;
        let usage_plan = UsagePlan {
            rate: self.usage_plan_rate,
            burst: self.usage_plan_burst,
            quota: self.usage_plan_quota.map(|q| (q, period)),
        };
        Ok(LocalConfig {
            origin_secrets,
            api_keys: self.api_keys.clone(),
            usage_plan,
            addr: SocketAddr::new(self.addr, self.port),
            stage: self.stage.clone(),
            idle_timeout: Duration::from_secs(self.idle_timeout.max(1)),
            max_connection_age: Duration::from_secs(self.max_age.max(1)),
            state_dir: self.state_dir.clone(),
            sigv4: (!self.no_sigv4).then(SigV4Verifier::from_env_or_local),
            admin_secret,
            force_dev_auth: self.force_dev_auth,
            ..LocalConfig::default()
        })
    }
}
