use switchboard::prelude::*;

#[derive(Deserialize)]
struct Order {
    item: String,
}

/// Takes an order; the runtime forwards it.
#[ws_route("placeOrder", forward = "orders", queues = ["audit"])]
async fn place_order(Json(_order): Json<Order>) -> &'static str {
    "accepted"
}

/// Fulfils orders.
#[queue_consumer("orders", batch_size = 5, timeout = 30)]
async fn fulfil(ctx: QueueCtx, order: Message<Order>) -> Result<(), WsError> {
    ctx.sender().send(&order.body.item).await?;
    Ok(())
}
const FULFIL_LINE: u32 = line!() - 4;

#[derive(Deserialize)]
struct Entry {}

#[queue_consumer("audit")]
async fn audit(_entry: Message<Entry>) {}

fn main() {
    let registry = switchboard::routes().unwrap();
    let route = registry.get("placeOrder").unwrap();
    assert_eq!(route.def.options.forward, Some("orders"));
    assert_eq!(route.def.options.queues, &["audit"]);
    let names: Vec<&str> = registry.queues().iter().map(|q| q.name).collect();
    assert_eq!(names, ["audit", "orders"]);
    let orders = registry.consumer("orders").unwrap();
    assert_eq!(orders.def.function, "fulfil");
    assert_eq!(orders.def.options.batch_size, Some(5));
    assert_eq!(orders.def.options.timeout_secs, Some(30));
    assert_eq!(orders.def.location.line, FULFIL_LINE);
    assert_eq!(orders.def.doc, "Fulfils orders.");
    assert_eq!(registry.consumer("audit").unwrap().def.function, "audit");
}
