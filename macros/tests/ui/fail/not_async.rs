use switchboard::prelude::*;

#[ws_route("echo")]
fn echo(_ctx: Ctx) {}

fn main() {
    // The function is still emitted: no "cannot find function" follow-on error.
    let _ = echo;
}
