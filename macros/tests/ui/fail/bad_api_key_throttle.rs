use switchboard::prelude::*;

#[ws_route("admin", api_key = "yes", throttle_rate = 0, throttle_burst = 9000)]
async fn admin(_ctx: Ctx) {}

#[ws_route("bulk", throttle_rate = 1000, throttle_burst = 5)]
async fn bulk(_ctx: Ctx) {}

#[queue_consumer("orders", api_key = true)]
async fn ship(_ctx: QueueCtx, _order: Message<String>) -> Result<(), WsError> {
    Ok(())
}

fn main() {
    let _ = (admin, bulk, ship);
}
