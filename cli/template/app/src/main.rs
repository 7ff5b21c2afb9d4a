//! `cargo run`: the service in the local gateway on http://127.0.0.1:3000.
//! `cargo run -- --help` lists the options; `cargo run -- manifest` prints its routes.

use {{crate_name}}::app;

fn main() -> std::process::ExitCode {
    app().main()
}
