//! The Pulumi program of {{project-name}} (`Pulumi.yaml` runs it under `pulumi up`):
//! the app's route registry, read from the linked app, to every AWS resource of a stage.

use {{crate_name}}::{WEB_PAGE, app};

/// The app's binary: every Lambda function runs its artifact,
/// `target/lambda/{BIN}/bootstrap.zip` unless the stack sets `artifact`.
const BIN: &str = "{{project-name}}";

fn main() -> std::process::ExitCode {
    switchboard_deploy::run(&app(), WEB_PAGE, BIN)
}
