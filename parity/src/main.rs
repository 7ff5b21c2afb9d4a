//! `switchboard-parity`: runs the parity checks against the target given on the command
//! line (or in `SWITCHBOARD_PARITY_*`), prints the table, writes the JSON report, and
//! exits 1 when a contract check fails (2 when it cannot run).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchboard_parity::{Options, ParityError, Target, checks, run};

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    match run_with(&options).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard-parity: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_with(options: &Options) -> Result<ExitCode, ParityError> {
    let target = Arc::new(Target::from_options(options)?);
    let selected = checks::matching(options.only.as_deref());
    eprintln!(
        "switchboard-parity: {} checks against {} and {} (idle wait {:?})",
        selected.len(),
        target.ws_url(),
        target.http_url(),
        target.idle_wait()
    );
    let report = run(target, &selected).await;
    print!("{}", report.table());
    if let Some(path) = &options.json {
        std::fs::write(path, report.to_json()).map_err(|source| ParityError::Report {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(if report.contract_failures() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
