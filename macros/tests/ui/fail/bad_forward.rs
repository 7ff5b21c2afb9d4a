use switchboard::prelude::*;

#[ws_route("placeOrder", forward = "orders.fifo", queues = ["a", "a"])]
async fn place_order() {}

fn main() {}
