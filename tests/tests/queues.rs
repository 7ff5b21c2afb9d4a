//! Queues end to end over real sockets: routes forward to the embedded FIFO queue and the
//! embedded consumers answer the client; nothing is lost when a consumer fails.
//!
//! The nothing-lost app registers its route and consumer by hand (`App::with_routes`,
//! `App::with_consumers`) so that it runs alone, without the chat app's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::consumer::{ConsumerDef, ConsumerOptions, erase_consumer};
use switchboard::handler::erase;
use switchboard::local::LocalGateway;
use switchboard::prelude::*;
use switchboard::queue::QueueSettings;
use switchboard::registry::SourceLocation;
use switchboard::{RouteDef, RouteKind, RouteOptions};
use switchboard_tests::*;
use tokio::time::Instant;

/// `GET /local/queues`, the queue named `name`.
async fn queue_row(gw: &LocalGateway, name: &str) -> Value {
    let view = http(gw.local_addr(), "GET", "/local/queues", b"").await;
    assert_eq!(view.status, 200);
    let all = view.json();
    all["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no queue {name} in {all}"))
}

#[tokio::test]
async fn place_order_is_queued_consumed_and_answered() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;
    let mut alice_tab = connect(&gw, "alice").await;
    let mut bob = connect(&gw, "bob").await;

    let reply = request(
        &mut alice,
        json!({"action": "placeOrder", "item": "tea", "qty": 2, "ref": "r-7"}),
        "orderAccepted",
    )
    .await;
    assert_eq!(
        reply,
        json!({"action": "orderAccepted", "item": "tea", "qty": 2, "ref": "r-7"})
    );

    // The consumer tells every connection of the customer, and no one else.
    for ws in [&mut alice, &mut alice_tab] {
        let (placed, _) = recv_until(ws, |f| f["action"] == "orderPlaced").await;
        assert_eq!(placed["item"], "tea");
        assert_eq!(placed["qty"], 2);
        assert_eq!(placed["customer"], "alice");
        assert_eq!(placed["ref"], "r-7");
        assert!(!placed["orderId"].as_str().unwrap().is_empty());
        assert!(placed["placedAt"].as_str().unwrap().ends_with('Z'));
    }
    expect_silence(&mut bob, Duration::from_millis(200)).await;

    // An invalid order is refused and never reaches the queue.
    let refused = request(
        &mut bob,
        json!({"action": "placeOrder", "item": "", "qty": 1}),
        "orderAccepted",
    )
    .await;
    assert_eq!(refused["error"]["code"], "bad_payload", "{refused}");
    assert_eq!(refused["error"]["route"], "placeOrder");

    let row = queue_row(&gw, "orders").await;
    assert_eq!(row["producers"], json!(["placeOrder"]));
    assert_eq!(row["deadLetterQueue"], "orders-dlq");
    assert_eq!(row["visible"], 0, "{row}");
    assert_eq!(row["inFlight"], 0, "{row}");
    assert_eq!(row["deadLetters"], 0, "{row}");
    assert_eq!(row["consumer"]["fn"], "fulfil");
    assert_eq!(row["consumer"]["processed"], 1, "{row}");
    assert_eq!(row["consumer"]["failed"], 0, "{row}");
    shutdown(gw).await;
}

// ---- nothing lost -------------------------------------------------------------------

/// The seed of the failing consumer's choices.
const SEED: u64 = 0x5eed_2026_1122;
/// Deliveries before a message goes to the dead-letter queue.
const MAX_RECEIVES: u32 = 3;
const USERS: [&str; 3] = ["ann", "ben", "cy"];
const PER_USER: u64 = 40;

#[derive(Debug, Deserialize)]
struct Job {
    seq: u64,
}

/// SplitMix64: a seeded, well-mixed choice per (message, delivery).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Whether delivery `receive` of job `seq` fails: a third of all deliveries.
fn fails(seq: u64, receive: u32) -> bool {
    mix(SEED ^ seq.wrapping_mul(0x1000_0000_01b3) ^ u64::from(receive)).is_multiple_of(3)
}

/// One consumer run: (seq, user, receive count, succeeded).
type Entry = (u64, String, u32, bool);

/// What the consumer did.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Vec<Entry>>>);

async fn accept_job(Json(job): Json<Job>) -> Json<Value> {
    Json(json!({"action": "queued", "seq": job.seq}))
}

async fn flaky(ctx: QueueCtx, job: Message<Job>) -> Result<(), String> {
    let ledger: Ledger = ctx.state().ok_or("no ledger")?;
    let failed = fails(job.body.seq, job.receive_count);
    ledger.0.lock().unwrap().push((
        job.body.seq,
        job.username().to_owned(),
        job.receive_count,
        !failed,
    ));
    if failed {
        Err(format!("job {} failed on purpose", job.body.seq))
    } else {
        Ok(())
    }
}

fn here(line: u32) -> SourceLocation {
    SourceLocation {
        file: file!(),
        line,
    }
}

fn flaky_app(ledger: &Ledger) -> App {
    let route = RouteDef {
        key: "job",
        kind: RouteKind::Custom,
        function: "accept_job",
        module: module_path!(),
        location: here(line!()),
        options: RouteOptions {
            forward: Some("jobs"),
            ..RouteOptions::default()
        },
        doc: "",
        handler: || erase(accept_job),
    };
    let consumer = ConsumerDef {
        queue: "jobs",
        function: "flaky",
        module: module_path!(),
        location: here(line!()),
        options: ConsumerOptions {
            batch_size: Some(10),
            ..ConsumerOptions::default()
        },
        doc: "",
        consumer: || erase_consumer(flaky),
    };
    App::new()
        .dev_auth()
        .with_routes([route])
        .with_consumers([consumer])
        .state(ledger.clone())
        .queue_settings(QueueSettings {
            visibility_timeout: Duration::from_millis(150),
            max_receive_count: MAX_RECEIVES,
            ..QueueSettings::default()
        })
}

#[tokio::test]
async fn nothing_is_lost_when_a_consumer_fails_a_third_of_deliveries() {
    let ledger = Ledger::default();
    let gw = step("start", flaky_app(&ledger).serve_local(config()))
        .await
        .unwrap();

    // Three users send concurrently; each user's jobs are one message group.
    let mut sends = Vec::new();
    for (u, user) in USERS.iter().enumerate() {
        let mut ws = connect(&gw, user).await;
        sends.push(tokio::spawn(async move {
            for i in 0..PER_USER {
                let seq = u as u64 * 1000 + i;
                send_json(&mut ws, &json!({"action": "job", "seq": seq})).await;
            }
            let replies = recv_n(&mut ws, PER_USER as usize).await;
            for (i, r) in replies.iter().enumerate() {
                assert_eq!(r["action"], "queued", "{r}");
                assert_eq!(r["seq"], u as u64 * 1000 + i as u64);
            }
            ws
        }));
    }
    let mut sockets = Vec::new();
    for s in sends {
        sockets.push(s.await.unwrap());
    }
    let sent = USERS.len() as u64 * PER_USER;

    // Until the queue is drained: every message processed or dead-lettered.
    let deadline = Instant::now() + Duration::from_secs(60);
    let row = loop {
        let row = queue_row(&gw, "jobs").await;
        let settled = row["visible"] == 0
            && row["inFlight"] == 0
            && row["consumer"]["processed"].as_u64().unwrap()
                + row["deadLetters"].as_u64().unwrap()
                == sent;
        if settled {
            break row;
        }
        assert!(Instant::now() < deadline, "queue not drained: {row}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let entries = ledger.0.lock().unwrap().clone();
    let mut successes: BTreeMap<u64, usize> = BTreeMap::new();
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (seq, user, _, ok) in &entries {
        if *ok {
            *successes.entry(*seq).or_default() += 1;
            order.entry(user.clone()).or_default().push(*seq);
        }
    }
    // No message processed twice after it succeeded.
    assert!(
        successes.values().all(|&n| n == 1),
        "processed twice: {successes:?}"
    );
    // What the seeded choices say: a job whose every delivery fails goes to the DLQ. So
    // may a job that never failed itself: messages behind a failure in the same batch are
    // reported too (to keep the group's order), and each such return counts as a
    // receive, as on AWS. Processed and dead-lettered jobs are disjoint and make up all.
    let all: BTreeSet<u64> = (0..USERS.len() as u64)
        .flat_map(|u| (0..PER_USER).map(move |i| u * 1000 + i))
        .collect();
    let must_die: BTreeSet<u64> = all
        .iter()
        .copied()
        .filter(|&seq| (1..=MAX_RECEIVES).all(|r| fails(seq, r)))
        .collect();
    assert!(!must_die.is_empty(), "the seed sends some jobs to the DLQ");
    let processed: BTreeSet<u64> = successes.keys().copied().collect();
    let dead: BTreeSet<u64> = all.difference(&processed).copied().collect();
    assert!(dead.is_superset(&must_die), "{dead:?} ⊉ {must_die:?}");
    // A job that succeeded was never dead-lettered, and one that failed on every
    // delivery it got was.
    for seq in &processed {
        assert!(!must_die.contains(seq), "job {seq} should have failed");
    }
    assert_eq!(
        processed.len() as u64 + row["deadLetters"].as_u64().unwrap(),
        sent,
        "sent = processed + dead letters: {row}"
    );
    assert_eq!(row["deadLetters"].as_u64().unwrap(), dead.len() as u64);
    assert_eq!(
        row["consumer"]["processed"].as_u64().unwrap(),
        processed.len() as u64
    );
    let failures = entries.iter().filter(|e| !e.3).count() as u64;
    assert_eq!(row["consumer"]["failed"].as_u64().unwrap(), failures);
    assert!(row["consumer"]["blocked"].as_u64().unwrap() > 0, "{row}");
    // Every delivery count a job saw is within the limit.
    assert!(entries.iter().all(|e| (1..=MAX_RECEIVES).contains(&e.2)));
    // Each user's jobs succeeded in the order they were sent (FIFO per group).
    for (user, seqs) in &order {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{user}: {seqs:?}");
    }
    // Each user's jobs carried the sender (the envelope's identity).
    for (seq, user, _, _) in &entries {
        let u = USERS.iter().position(|n| n == user).unwrap() as u64;
        assert_eq!(seq / 1000, u);
    }
    drop(sockets);
    shutdown(gw).await;
}
