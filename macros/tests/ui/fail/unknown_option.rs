use switchboard::prelude::*;

#[ws_route("echo", memroy = 512)]
async fn echo(_ctx: Ctx) {}

fn main() {
    let _ = echo;
}
