use switchboard::prelude::*;

#[ws_route("echo")]
async fn echo<S: Clone>(_state: State<S>) {}

fn main() {
    let _ = echo::<u8>;
}
