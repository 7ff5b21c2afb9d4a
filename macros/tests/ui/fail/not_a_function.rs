use switchboard::prelude::*;

#[ws_default]
struct Fallback;

fn main() {
    let _ = Fallback;
}
