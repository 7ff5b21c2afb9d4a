use switchboard::prelude::*;

#[ws_route("echo", memory = 64)]
async fn echo(_ctx: Ctx) {}

fn main() {
    let _ = echo;
}
