//! The sharded fan-out in the local gateway, over real sockets: with a threshold of 2, a
//! broadcast to 3 connections goes through the embedded fan-out queue and the
//! in-process consumers, and each connection gets the frame once, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;

#[tokio::test]
async fn a_broadcast_above_the_threshold_is_sharded_and_delivered_once() {
    let gw = step(
        "gateway start",
        chat_app::app()
            .dev_auth()
            .fanout_threshold(2)
            .serve_local(config()),
    )
    .await
    .expect("gateway starts");
    let mut a = connect(&gw, "a").await;
    let mut b = connect(&gw, "b").await;
    let mut c = connect(&gw, "c").await;

    send_json(&mut a, &json!({"action": "broadcast", "data": "big"})).await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(
            recv_text(ws).await,
            r#"{"action":"broadcast","data":"big"}"#,
            "broadcast frame through the fan-out queue"
        );
    }
    // Once each: nothing else arrives.
    for ws in [&mut a, &mut b, &mut c] {
        expect_silence(ws, Duration::from_millis(200)).await;
    }
    // The consumers count their posts as an inline send does (the dashboard's widgets),
    // and /local/queues shows what went through the fan-out queue. Both are added after
    // the shard's posts: poll briefly (bounded).
    let mut queues = Value::Null;
    for _ in 0..100 {
        queues = http(gw.local_addr(), "GET", "/local/queues", b"")
            .await
            .json();
        if queues["fanout"]["delivered"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = http(gw.local_addr(), "GET", "/local/stats", b"")
        .await
        .json();
    assert_eq!(stats["metrics"]["fanoutRecipients"], 3, "{stats}");
    let fanout = &queues["fanout"];
    assert_eq!(
        (
            &fanout["threshold"],
            &fanout["delivered"],
            &fanout["visible"]
        ),
        (&json!(2), &json!(3), &json!(0)),
        "{queues}"
    );
    assert!(fanout["messages"].as_u64() >= Some(1), "{queues}");
    // Two connections are at the threshold: inline, as before.
    close(&mut c).await;
    send_json(&mut b, &json!({"action": "broadcast", "data": "small"})).await;
    for ws in [&mut a, &mut b] {
        assert_eq!(
            recv_text(ws).await,
            r#"{"action":"broadcast","data":"small"}"#
        );
    }
    let stats = http(gw.local_addr(), "GET", "/local/stats", b"")
        .await
        .json();
    assert_eq!(stats["metrics"]["fanoutRecipients"], 5, "{stats}");
    let queues = http(gw.local_addr(), "GET", "/local/queues", b"")
        .await
        .json();
    assert_eq!(
        queues["fanout"]["delivered"], 3,
        "inline: not through the queue {queues}"
    );
    for ws in [&mut a, &mut b] {
        close(ws).await;
    }
    shutdown(gw).await;
}
