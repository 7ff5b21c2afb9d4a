//! Faults: DynamoDB, SQS or `@connections` disappears mid-run and comes back. The real
//! `chat-app` binary runs in Lambda mode (warm processes, never restarted here) with each
//! endpoint behind a [`RecordingProxy`](switchboard::testing::proxy) that is cut and
//! restored; moto keeps its state throughout (a restarted moto would start empty).
//!
//! - callers get an error frame (`store_unavailable`, `queue_unavailable`,
//!   `connections_unavailable`), not an invocation error, a hang or a crash;
//! - the SDK retries (3 attempts per call, counted at the proxy) and gives up in bounded
//!   time, also against an endpoint that accepts and never answers;
//! - the same process works again once the endpoint is back;
//! - every acknowledged forward is in the queue exactly once.
//!
//! Needs a moto server: `.ci/run` starts one; by hand: `eval "$(bash scripts/moto.sh start)"`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Aws;
use switchboard::aws::MAX_ATTEMPTS;
use switchboard::backend::ConnectionStore;
use switchboard::queue::Queue;
use switchboard::testing::lambda::Answer;
use switchboard::testing::proxy::Outcome;

/// After a cut, lets the functions' HTTP clients notice that their idle pooled
/// connections were closed, so that every attempt reaches the proxy and is counted.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn error_code(frame: &Value) -> &str {
    frame["error"]["code"].as_str().unwrap_or_default()
}

fn attempts(calls: &[switchboard::testing::proxy::Call], op: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.operation == op && c.outcome == Outcome::Cut)
        .count()
}

#[tokio::test]
async fn store_outage_is_a_clear_error_and_the_warm_process_recovers() {
    let Some(aws) = Aws::start("store_outage").await else {
        return;
    };
    let connect = aws.function("ws:$connect").await;
    let clients = aws.clients("s", 2, &connect).await;
    let mut whoami = aws.function("ws:whoami").await;
    let me = clients[0].event("MESSAGE", "whoami", Some("{}"));
    assert_eq!(whoami.reply(&me).await["action"], "whoami");

    // Cut: every attempt's connection is closed without an answer. The SDK makes
    // MAX_ATTEMPTS attempts, then the caller gets store_unavailable as a frame.
    aws.reset_calls();
    aws.ddb.cut();
    settle().await;
    let started = Instant::now();
    let answer = whoami.invoke(&me).await;
    let elapsed = started.elapsed();
    let Answer::Response(response) = &answer else {
        panic!("an error frame, not an invocation error: {answer:?}")
    };
    let frame: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(error_code(&frame), "store_unavailable", "{frame}");
    assert_eq!(frame["error"]["route"], "whoami");
    let calls = aws.ddb.take_calls();
    assert_eq!(
        attempts(&calls, "Query"),
        MAX_ATTEMPTS as usize,
        "{calls:?}"
    );
    println!(
        "store cut: whoami answered store_unavailable after {elapsed:?}, {MAX_ATTEMPTS} attempts"
    );

    // $connect during the outage: refused with 503 and the error frame.
    let answer = connect
        .invoke(&clients[1].event_with_id("CONNECT", "$connect", None, "Y29ubmVjdDI="))
        .await;
    assert_eq!(answer.body()["statusCode"], 503, "{answer:?}");
    let frame: Value = serde_json::from_str(answer.body()["body"].as_str().unwrap()).unwrap();
    assert_eq!(error_code(&frame), "store_unavailable");
    let calls = aws.ddb.take_calls();
    assert_eq!(
        attempts(&calls, "PutItem"),
        MAX_ATTEMPTS as usize,
        "{calls:?}"
    );

    // A stopped server: connections refused (not even recorded), same answer.
    aws.ddb.cut_refusing();
    assert_eq!(error_code(&whoami.reply(&me).await), "store_unavailable");
    assert!(
        aws.ddb.take_calls().is_empty(),
        "refused connections never reach the proxy"
    );

    // An endpoint that accepts and never answers: bounded by the attempt and operation
    // timeouts (4 s, 9 s), well inside API Gateway's 29 s.
    aws.ddb.stall();
    let started = Instant::now();
    let frame = whoami.reply(&me).await;
    let elapsed = started.elapsed();
    assert_eq!(error_code(&frame), "store_unavailable", "{frame}");
    assert!(
        elapsed >= switchboard::aws::ATTEMPT_TIMEOUT,
        "answered only after an attempt timed out: {elapsed:?}"
    );
    let stalled = aws.ddb.take_calls().len();
    assert!(
        (2..=MAX_ATTEMPTS as usize).contains(&stalled),
        "attempts until the operation timeout: {stalled}"
    );
    println!(
        "store stalled: whoami answered store_unavailable after {elapsed:?}, {stalled} attempts"
    );

    // Back: the same process answers, no restart.
    aws.ddb.restore();
    let frame = whoami.reply(&me).await;
    assert_eq!(frame["action"], "whoami", "{frame}");
    assert_eq!(frame["connectionId"], clients[0].id.as_str());
    assert!(whoami.is_running(), "the warm process survived the outage");
    let calls = aws.ddb.take_calls();
    assert_eq!(
        calls.len(),
        1,
        "one Query once the store is back: {calls:?}"
    );
    aws.stack.gw.shutdown().await;
}

#[tokio::test]
async fn queue_outage_loses_no_acknowledged_forward() {
    let Some(aws) = Aws::start("queue_outage").await else {
        return;
    };
    let connect = aws.function("ws:$connect").await;
    let clients = aws.clients("q", 1, &connect).await;
    let mut place = aws.function("ws:placeOrder").await;
    let order = |i: usize| {
        let body =
            json!({"action": "placeOrder", "item": "tea", "qty": 1, "ref": format!("o-{i}")});
        let id = format!("bXNn{i:04}");
        clients[0].event_with_id("MESSAGE", "placeOrder", Some(&body.to_string()), &id)
    };
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    let mut record = |i: usize, frame: &Value| match frame["action"].as_str() {
        Some("orderAccepted") => acknowledged.push(format!("o-{i}")),
        _ => {
            assert_eq!(error_code(frame), "queue_unavailable", "{frame}");
            assert!(
                frame["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("try again")
            );
            refused.push(format!("o-{i}"));
        }
    };

    // Before, during and after a cut: accepted, refused with the error, accepted.
    let mut next = 0;
    for _ in 0..3 {
        let frame = place.reply(&order(next)).await;
        assert_eq!(frame["action"], "orderAccepted", "{frame}");
        record(next, &frame);
        next += 1;
    }
    aws.reset_calls();
    aws.sqs.cut();
    settle().await;
    for _ in 0..3 {
        let frame = place.reply(&order(next)).await;
        assert_eq!(error_code(&frame), "queue_unavailable", "{frame}");
        record(next, &frame);
        next += 1;
    }
    let calls = aws.sqs.take_calls();
    assert_eq!(
        attempts(&calls, "SendMessage"),
        3 * MAX_ATTEMPTS as usize,
        "each refused forward was tried {MAX_ATTEMPTS} times: {calls:?}"
    );
    aws.sqs.restore();
    for _ in 0..3 {
        let frame = place.reply(&order(next)).await;
        assert_eq!(frame["action"], "orderAccepted", "{frame}");
        record(next, &frame);
        next += 1;
    }

    // Flapping: the endpoint goes away and comes back every few milliseconds while
    // orders arrive, so some connections are cut mid-request (the message may be in
    // the queue while its answer is lost, and the SDK's retry is then a duplicate that
    // the FIFO deduplication id absorbs).
    let stop = AtomicBool::new(false);
    let sqs_cut = {
        let stop = &stop;
        let period = [7u64, 3, 11, 5, 13, 2];
        let proxy = &aws.sqs;
        async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 2_000 {
                proxy.cut();
                tokio::time::sleep(Duration::from_millis(period[i % period.len()])).await;
                proxy.restore();
                tokio::time::sleep(Duration::from_millis(period[(i + 3) % period.len()] * 4)).await;
                i += 1;
            }
            proxy.restore();
        }
    };
    let orders = async {
        let mut frames = Vec::new();
        for i in next..next + 30 {
            frames.push((i, place.reply(&order(i)).await));
        }
        stop.store(true, Ordering::Relaxed);
        frames
    };
    let ((), frames) = tokio::join!(sqs_cut, orders);
    for (i, frame) in &frames {
        record(*i, frame);
    }
    next += frames.len();
    assert!(place.is_running(), "the warm process survived");

    // What is in the queue: every acknowledged order exactly once, nothing else twice.
    let mut queued: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..50 {
        let batch = aws
            .queue
            .receive("orders", 10, Duration::from_secs(1))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let envelope: Value = serde_json::from_str(&m.body).unwrap();
            let r = envelope["payload"]["ref"].as_str().unwrap().to_owned();
            *queued.entry(r).or_default() += 1;
            aws.queue.delete("orders", &m.receipt_handle).await.unwrap();
        }
    }
    for r in &acknowledged {
        assert_eq!(
            queued.get(r),
            Some(&1),
            "acknowledged {r} queued exactly once: {queued:?}"
        );
    }
    for (r, n) in &queued {
        assert_eq!(*n, 1, "{r} queued {n} times");
        assert!(
            acknowledged.contains(r) || refused.contains(r),
            "{r} was sent by this test"
        );
    }
    let lost_answers = refused.iter().filter(|r| queued.contains_key(*r)).count();
    println!(
        "queue faults: {next} orders, {} acknowledged (all queued once), {} refused ({lost_answers} of them queued: answer lost mid-request)",
        acknowledged.len(),
        refused.len()
    );
    assert_eq!(acknowledged.len() + refused.len(), next);
    assert!(refused.len() >= 3 && acknowledged.len() >= 6);
    aws.stack.gw.shutdown().await;
}

#[tokio::test]
async fn connections_outage_keeps_records_and_gone_still_means_gone() {
    let Some(aws) = Aws::start("connections_outage").await else {
        return;
    };
    let connect = aws.function("ws:$connect").await;
    let mut clients = aws.clients("c", 2, &connect).await;
    let join = aws.function("ws:join").await;
    for client in &clients {
        let body = r#"{"action":"join","room":"lobby"}"#;
        assert_eq!(
            join.reply(&client.event("MESSAGE", "join", Some(body)))
                .await["action"],
            "joined"
        );
    }
    // The presence frames: client 0 gets two, client 1 one.
    for _ in 0..2 {
        assert_eq!(clients[0].recv().await["action"], "presence");
    }
    assert_eq!(clients[1].recv().await["action"], "presence");

    let mut send = aws.function("ws:sendMessage").await;
    let message =
        |text: &str| json!({"action": "sendMessage", "room": "lobby", "text": text}).to_string();

    // @connections cut: the send fails with a clear error; one attempt per recipient
    // (a network error is not retried: the frame may have been delivered); no record
    // is removed, since nothing said the recipients were gone.
    aws.reset_calls();
    aws.mgmt.cut();
    settle().await;
    let frame = send
        .reply(&clients[0].event("MESSAGE", "sendMessage", Some(&message("lost"))))
        .await;
    assert_eq!(error_code(&frame), "connections_unavailable", "{frame}");
    let calls = aws.mgmt.take_calls();
    assert_eq!(attempts(&calls, "PostToConnection"), 2, "{calls:?}");
    for client in &clients {
        assert!(
            aws.store
                .get_connection(&client.id)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        clients[1]
            .try_recv(Duration::from_millis(300))
            .await
            .is_none()
    );

    // Refused connections (a stopped endpoint): the same error.
    aws.mgmt.cut_refusing();
    let frame = send
        .reply(&clients[0].event("MESSAGE", "sendMessage", Some(&message("lost"))))
        .await;
    assert_eq!(error_code(&frame), "connections_unavailable", "{frame}");

    // Back: the same process delivers.
    aws.mgmt.restore();
    let frame = send
        .reply(&clients[0].event("MESSAGE", "sendMessage", Some(&message("back"))))
        .await;
    assert_eq!(frame, Value::Null, "{frame}");
    for client in &mut clients {
        assert_eq!(client.recv().await["text"], "back");
    }
    assert!(send.is_running());

    // GoneException still means gone: client 1 closes its socket (its $disconnect never
    // reaches DynamoDB here), the next send gets 410 for it and removes its record.
    let closed = clients.pop().unwrap();
    let mut ws = closed.ws;
    ws.close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while aws.gw.open_connections() > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let frame = send
        .reply(&clients[0].event("MESSAGE", "sendMessage", Some(&message("after"))))
        .await;
    assert_eq!(
        frame,
        Value::Null,
        "a partial delivery is not an error: {frame}"
    );
    assert_eq!(clients[0].recv().await["text"], "after");
    assert!(
        aws.store
            .get_connection(&closed.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(aws.store.room_members("lobby").await.unwrap().len(), 1);
    aws.stack.gw.shutdown().await;
}
