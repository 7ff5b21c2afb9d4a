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
pub mod checks;
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
    /// Stack configuration and artifact problems, all of them (nothing was registered).
    #[error("before deploying:\n  - {}", .0.join("\n  - "))]
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
///
/// Run with `--manifest-sha256` (outside Pulumi), it prints the manifest hash it
/// expects next to the artifact instead.
pub fn run(app: &impl AsRef<AppSpec>, web_page: &str, bin: &str) -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--manifest-sha256") {
        return match app.as_ref().manifest() {
            Ok(m) => {
                println!("{}", m.manifest_hash());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard-deploy: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
    let lookup = |ns: Option<&str>, k: &str| {
        ctx.require_config(ns, k)
            .ok()
            .or_else(|| config::engine_config(ns, k))
    };
    let (mut cfg, mut problems) = StackConfig::read(
        |k| lookup(None, k),
        ctx.get_stack(),
        lookup(Some("aws"), "region"),
        &manifest.app,
        &plan::default_artifact(bin),
    );
    let (settings, more) = config::inherited_aws_settings(|k| lookup(Some("aws"), k));
    cfg.aws_settings = settings;
    problems.extend(more);
    problems.extend(config::plaintext_secrets(ctx.get_project()));
    let service = Service::from_manifest(&manifest)?;
    problems.extend(checks::service(&service));
    if !cfg.api_keys.is_empty() && !service.api_key_required() {
        problems.push(
            "`apiKeys` is set, but no route needs an API key (`api_key = true`): the keys would gate nothing".to_owned(),
        );
    }
    let (digest, more) = checks::artifact(
        std::path::Path::new(&cfg.artifact),
        &manifest.manifest_hash(),
        bin,
    );
    cfg.artifact_sha256 = digest;
    problems.extend(more);
    if !problems.is_empty() {
        return Err(DeployError::Config(problems));
    }
    let plan = plan(&service, &cfg, web_page)?;
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
