use switchboard::prelude::*;

#[queue_consumer("orders")]
async fn fulfil(_count: u32) {}

#[queue_consumer("bad name", batch_size = 11)]
async fn other(_m: Message<u32>) {}

fn main() {}
