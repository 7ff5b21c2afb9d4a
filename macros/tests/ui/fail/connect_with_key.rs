use switchboard::prelude::*;

#[ws_connect("$connect")]
async fn connect(_ctx: Ctx) {}

#[ws_default("fallback", timeout = 3)]
async fn fallback(_ctx: Ctx) {}

fn main() {
    let _ = connect;
    let _ = fallback;
}
