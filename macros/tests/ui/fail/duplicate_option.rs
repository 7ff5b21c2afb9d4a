use switchboard::prelude::*;

#[ws_route("echo", timeout = 10, memory = 512, timeout = 20)]
async fn echo(_ctx: Ctx) {}

fn main() {
    let _ = echo;
}
