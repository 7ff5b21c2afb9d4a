//! The Switchboard Pulumi program: an app's route registry to AWS resources.
//!
//! [`model::Service::from_manifest`] reads the app's [`Manifest`] (linked, never parsed
//! from source); [`plan::plan`] turns it and the stack's [`config::StackConfig`] into
//! every resource of the stage, in dependency order, through the typed layer in
//! [`aws`]; [`engine::register`] registers them with the Pulumi engine through Pulumi
//! Gestalt. [`run`] does all of it for a binary whose `main` is one line:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     switchboard_deploy::run(&chat_app::app(), chat_app::WEB_PAGE, "chat-app")
//! }
//! ```

pub mod aws;
pub mod config;
pub mod engine;
pub mod input;
pub mod model;
pub mod plan;

use std::process::ExitCode;

use switchboard_core::manifest::Manifest;
use switchboard_core::spec::AppSpec;

pub use config::StackConfig;
pub use model::Service;
pub use plan::{Plan, plan};

/// Why the program cannot declare the stage.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The app's registry is invalid.
    #[error("the app's registry: {0}")]
    App(String),
    /// The manifest does not have the expected shape.
    #[error("reading the manifest: {0}")]
    Manifest(#[source] serde_json::Error),
    /// A queue names a producer that is not a function of the service.
    #[error("queue `{queue}` names producer `{producer}`, which is not a function of the service")]
    UnknownProducer {
        /// The queue.
        queue: String,
        /// The producer's role.
        producer: String,
    },
    /// Stack configuration problems, all of them.
    #[error("stack configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    /// The Lambda artifact is missing.
    #[error(
        "the Lambda artifact {path} does not exist: build it first (cargo lambda build --arm64 --profile lambda -p {package} --output-format zip), or set `artifact`"
    )]
    Artifact {
        /// Where the artifact was looked for.
        path: String,
        /// The app's package (its binary), for the build command.
        package: String,
    },
    /// The plan is inconsistent (a bug in the program).
    #[error("plan: {0}")]
    Plan(String),
    /// Values the engine returned could not be used.
    #[error("registering resources:\n  - {}", .0.join("\n  - "))]
    Register(Vec<String>),
}

/// The plan of a stage for an app's manifest.
pub fn plan_for(
    manifest: &Manifest,
    cfg: &StackConfig,
    web_page: &str,
) -> Result<Plan, DeployError> {
    let service = Service::from_manifest(manifest)?;
    plan(&service, cfg, web_page)
}

/// The Pulumi program: reads the stack's configuration from the engine, plans the
/// stage for `app` and registers it. `bin` is the app's binary, whose artifact is
/// `target/lambda/<bin>/bootstrap.zip` unless `artifact` is configured.
pub fn run(app: &impl AsRef<AppSpec>, web_page: &str, bin: &str) -> ExitCode {
    match run_inner(app.as_ref(), web_page, bin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-deploy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(app: &AppSpec, web_page: &str, bin: &str) -> Result<(), DeployError> {
    let manifest = app
        .manifest()
        .map_err(|e| DeployError::App(e.to_string()))?;
    let ctx = pulumi_gestalt_rust::Context::new();
    let region = ctx.require_config(Some("aws"), "region").ok();
    let cfg = StackConfig::from_lookup(
        |k| ctx.require_config(None, k).ok(),
        ctx.get_stack(),
        region,
        &manifest.app,
        &plan::default_artifact(bin),
    )?;
    if !std::path::Path::new(&cfg.artifact).is_file() {
        return Err(DeployError::Artifact {
            path: cfg.artifact,
            package: bin.to_owned(),
        });
    }
    let plan = plan_for(&manifest, &cfg, web_page)?;
    let problems = engine::register(&ctx, &plan);
    ctx.finish();
    let problems = std::mem::take(
        &mut *problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Register(problems))
    }
}
