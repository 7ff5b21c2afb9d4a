use switchboard::prelude::*;

#[ws_route("$connect")]
async fn connect(_ctx: Ctx) {}

fn main() {
    let _ = connect;
}
