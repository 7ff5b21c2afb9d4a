use switchboard::prelude::*;

#[ws_route("send message")]
async fn send(_ctx: Ctx) {}

fn main() {
    let _ = send;
}
