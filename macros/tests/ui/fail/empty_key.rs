use switchboard::prelude::*;

#[ws_route("")]
async fn echo(_ctx: Ctx) {}

fn main() {
    let _ = echo;
}
