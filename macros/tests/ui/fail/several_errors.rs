use switchboard::prelude::*;

// All three problems are reported in one compile.
#[ws_route("echo", colour = "blue", timeout = 9000)]
fn echo(_ctx: Ctx) {}

fn main() {
    let _ = echo;
}
