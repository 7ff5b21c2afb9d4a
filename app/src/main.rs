//! `cargo run`: the chat service in the local gateway on http://127.0.0.1:3000.
//! `cargo run -- manifest`: its route registry as JSON.

fn main() -> std::process::ExitCode {
    chat_app::app().main()
}
