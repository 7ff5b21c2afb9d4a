use switchboard::prelude::*;

#[ws_route("add")]
async fn add(_ctx: Ctx, x: u32) -> String {
    x.to_string()
}

fn main() {
    let _ = add;
}
