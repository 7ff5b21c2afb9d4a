use switchboard::prelude::*;

struct Chat;

impl Chat {
    #[ws_route("echo")]
    async fn echo(&self, _ctx: Ctx) {}
}

fn main() {
    let _ = Chat::echo;
}
