use switchboard::prelude::*;

#[ws_route("echo", memory = "big")]
async fn echo(_ctx: Ctx) {}

fn main() {
    let _ = echo;
}
