//! Orders: the queue example. `placeOrder` checks an order and forwards it to the
//! `orders` FIFO queue; the `orders` consumer fulfils it and tells the customer.
//!
//! ```text
//! client ── {"action":"placeOrder","item":"tea","qty":2} ──▶ placeOrder
//!        ◀── {"action":"orderAccepted",...} (route response: it is queued)
//! orders queue (group = the customer: each customer's orders in order)
//!        ──▶ fulfil ── {"action":"orderPlaced",...} ──▶ every connection of the customer
//! ```

use switchboard::prelude::*;

/// The longest item name accepted.
pub const MAX_ITEM_CHARS: usize = 64;

/// The most of one item per order.
pub const MAX_QTY: u32 = 100;

/// `{"item": I, "qty": N, "ref": R?}`: an order. `ref` is the client's own reference,
/// echoed in the replies.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct PlaceOrder {
    /// What to order.
    pub item: String,
    /// How many (1..=[`MAX_QTY`]).
    pub qty: u32,
    /// The client's reference, if it gave one.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl PlaceOrder {
    fn check(&self) -> Result<(), WsError> {
        let item = self.item.trim();
        if item.is_empty() || item.chars().count() > MAX_ITEM_CHARS {
            return Err(WsError::bad_payload(format!(
                "`item` must be 1 to {MAX_ITEM_CHARS} characters"
            )));
        }
        if !(1..=MAX_QTY).contains(&self.qty) {
            return Err(WsError::bad_payload(format!(
                "`qty` must be 1 to {MAX_QTY}"
            )));
        }
        if self
            .reference
            .as_ref()
            .is_some_and(|r| r.chars().count() > 64)
        {
            return Err(WsError::bad_payload("`ref` must be at most 64 characters"));
        }
        Ok(())
    }
}

/// The reply to `placeOrder`: the order is on the queue.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderAccepted {
    /// `orderAccepted`.
    #[schemars(extend("const" = "orderAccepted"))]
    pub action: &'static str,
    /// The item.
    pub item: String,
    /// How many.
    pub qty: u32,
    /// The client's reference.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Checks an order and puts it on the `orders` queue (the runtime forwards the frame once
/// this returns `Ok`; the reply means "queued").
#[ws_route("placeOrder", forward = "orders")]
async fn place_order(Json(order): Json<PlaceOrder>) -> Result<Json<OrderAccepted>, WsError> {
    order.check()?;
    Ok(Json(OrderAccepted {
        action: "orderAccepted",
        item: order.item.trim().to_owned(),
        qty: order.qty,
        reference: order.reference,
    }))
}

/// What the consumer sends the customer once an order is fulfilled.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced<'a> {
    /// `orderPlaced`.
    #[schemars(extend("const" = "orderPlaced"))]
    pub action: &'static str,
    /// The queue's message id: stable across redeliveries, so clients can drop repeats.
    pub order_id: &'a str,
    /// The item.
    pub item: &'a str,
    /// How many.
    pub qty: u32,
    /// Who ordered.
    pub customer: &'a str,
    /// The client's reference.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'a str>,
    /// When the order was placed (RFC 3339).
    pub placed_at: &'a str,
}

/// Fulfils an order and tells every connection of the customer (or, for an anonymous
/// customer, the connection that ordered).
#[queue_consumer("orders", batch_size = 10, timeout = 30, emits = [OrderPlaced])]
async fn fulfil(ctx: QueueCtx, order: Message<PlaceOrder>) -> Result<(), WsError> {
    // Whatever was forwarded passed `placeOrder`'s checks; a consumer still trusts
    // nothing it did not check itself.
    order.body.check()?;
    let customer = order.username();
    let placed = OrderPlaced {
        action: "orderPlaced",
        order_id: &order.message_id,
        item: order.body.item.trim(),
        qty: order.body.qty,
        customer,
        reference: order.body.reference.as_deref(),
        placed_at: &order.sent_at,
    };
    let target = if customer.is_empty() {
        ctx.sender()
    } else {
        ctx.user(customer)
    };
    target.send(&placed).await?;
    Ok(())
}
