//! The `switchboard` command. `switchboard new NAME` creates a service workspace from
//! Switchboard's template: one handler, its web page, the deploy program, tests,
//! `.ci/run` and a README; `cargo run` inside it starts the service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard_cli::{DEFAULT_GIT, MAX_APP_NAME_LEN, NewError, Source};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    about = "Switchboard: realtime WebSocket services on AWS API Gateway v2."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new service workspace from the template.
    New(NewArgs),
}

#[derive(clap::Args, Debug)]
struct NewArgs {
    /// The service's name: lowercase letters, digits and `-` (e.g. `my-service`); its
    /// package, binary and app name.
    name: String,
    /// The directory to create (default: `./NAME`); it must not exist.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// Depend on a local Switchboard checkout (path dependencies) instead of git.
    #[arg(long, value_name = "PATH", conflicts_with = "switchboard_git")]
    switchboard_path: Option<PathBuf>,
    /// The git repository to depend on.
    #[arg(long, value_name = "URL", default_value = DEFAULT_GIT)]
    switchboard_git: String,
}

fn new(args: NewArgs) -> Result<(), NewError> {
    switchboard_cli::validate_name(&args.name)?;
    let source = match &args.switchboard_path {
        Some(path) => Source::Path(switchboard_cli::checkout(path)?),
        None => Source::Git(args.switchboard_git.clone()),
    };
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    switchboard_cli::generate(&args.name, &dir, &source)?;
    let from = match &source {
        Source::Git(url) => format!("git {url}"),
        Source::Path(path) => format!("the checkout at {}", path.display()),
    };
    println!(
        "Created service `{}` in {} (Switchboard from {from}).",
        args.name,
        dir.display()
    );
    println!();
    println!("Next:");
    println!("  cd {}", dir.display());
    println!(
        "  cargo run          # the service on http://127.0.0.1:3000: open it, sign in, say hello"
    );
    println!("  bash .ci/run       # fmt, clippy -D warnings, tests");
    println!();
    println!("Handlers are in app/src/lib.rs; README.md says how to add routes and deploy.");
    if args.name.len() > MAX_APP_NAME_LEN {
        println!(
            "Note: the deploy program prefixes AWS resource names with the app name, at most {MAX_APP_NAME_LEN} characters: before `pulumi up`, run `pulumi config set app SHORT-NAME`."
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::New(args) => new(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
