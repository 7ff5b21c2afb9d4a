//! The Pulumi program of the example chat (`Pulumi.yaml` runs it under `pulumi up`).

fn main() -> std::process::ExitCode {
    switchboard_deploy::run(&chat_app::app(), chat_app::WEB_PAGE, "chat-app")
}
