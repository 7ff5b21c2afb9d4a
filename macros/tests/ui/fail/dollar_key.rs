use switchboard::prelude::*;

#[ws_route("$foo")]
async fn foo(_ctx: Ctx) {}

fn main() {
    let _ = foo;
}
