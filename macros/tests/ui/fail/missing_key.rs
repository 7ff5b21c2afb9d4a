use switchboard::prelude::*;

#[ws_route(memory = 512)]
async fn send(_ctx: Ctx) {}

fn main() {
    let _ = send;
}
