//! Room history and `resume` over real sockets, on the embedded store: a reader drops
//! (its own close, a signed `DELETE @connections`, a reset TCP connection), the writer
//! sends 50 lines, the reader reconnects with a new connection id and resumes: it gets
//! all 50 in order, then live lines with no gap. A stale epoch and expired history
//! answer `recovered:false` and replay nothing. The same scenario on DynamoDB (moto) is
//! in `history_dynamodb.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard::backend::history::MemoryHistory;
use switchboard::local::LocalGateway;
use switchboard_tests::history::{DropBy, drop_and_resume, line, room_frames_until};
use switchboard_tests::*;

#[tokio::test]
async fn resume_after_the_reader_closed() {
    let gw = start().await;
    drop_and_resume(&gw, DropBy::Close, "close", 50).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn resume_after_a_server_delete() {
    let gw = start().await;
    drop_and_resume(&gw, DropBy::ServerDelete, "delete", 50).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn resume_after_a_dropped_tcp_connection() {
    let gw = start().await;
    drop_and_resume(&gw, DropBy::Tcp, "tcp", 50).await;
    shutdown(gw).await;
}

/// Sends one chat line from `ws` and waits for its own copy (stored and delivered).
async fn say(ws: &mut Ws, room: &str, text: &str) -> Value {
    send_json(ws, &line(room, text)).await;
    recv_until(ws, |f| f["action"] == "message" && f["text"] == text)
        .await
        .0
}

#[tokio::test]
async fn a_stale_epoch_is_not_recovered_and_nothing_is_replayed() {
    let gw = start().await;
    let mut writer = connect(&gw, "writer").await;
    join(&mut writer, "epochs").await;
    let first = say(&mut writer, "epochs", "one").await;
    let last = say(&mut writer, "epochs", "two").await;
    assert_eq!(last["seq"].as_u64(), first["seq"].as_u64().map(|s| s + 1));

    let mut reader = connect(&gw, "reader").await;
    send_json(
        &mut reader,
        &json!({"action": "resume", "id": "e1",
                "rooms": [{"room": "epochs", "since": 1, "epoch": "an-epoch-of-another-life"}]}),
    )
    .await;
    let (resumed, before) = recv_until(&mut reader, |f| f["action"] == "resumed").await;
    assert!(before.is_empty(), "nothing replayed: {before:?}");
    assert_eq!(resumed["id"], "e1");
    let entry = &resumed["rooms"][0];
    assert_eq!(entry["recovered"], false, "{resumed}");
    assert_eq!(entry["epoch"], last["epoch"]);
    assert_eq!(entry["seq"], last["seq"]);

    // Still a member again: live lines arrive, numbered on.
    let live = say(&mut writer, "epochs", "three").await;
    let (got, _) = recv_until(&mut reader, |f| f["action"] == "message").await;
    assert_eq!(
        (got["text"].as_str(), &got["seq"]),
        (Some("three"), &live["seq"])
    );
    shutdown(gw).await;
}

#[tokio::test]
async fn no_epoch_replays_everything_kept() {
    let gw = start().await;
    let mut writer = connect(&gw, "writer").await;
    join(&mut writer, "fresh").await;
    for i in 0..5 {
        say(&mut writer, "fresh", &format!("l{i}")).await;
    }
    let mut reader = connect(&gw, "reader").await;
    send_json(
        &mut reader,
        &json!({"action": "resume", "rooms": [{"room": "fresh", "since": 0, "epoch": null}]}),
    )
    .await;
    let (resumed, replay) = recv_until(&mut reader, |f| f["action"] == "resumed").await;
    let seqs: Vec<u64> = replay.iter().filter_map(|f| f["seq"].as_u64()).collect();
    let last = resumed["rooms"][0]["seq"].as_u64().unwrap();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "{replay:?}");
    assert_eq!(resumed["rooms"][0]["recovered"], true);
    let texts: Vec<&str> = replay.iter().filter_map(|f| f["text"].as_str()).collect();
    assert_eq!(texts, ["l0", "l1", "l2", "l3", "l4"]);
    assert!(resumed.get("id").is_none(), "no id asked, none given");
    shutdown(gw).await;
}

#[tokio::test]
async fn expired_history_is_not_recovered() {
    let start_at = SystemTime::now();
    let now = Arc::new(Mutex::new(start_at));
    let clock = Arc::clone(&now);
    let history = MemoryHistory::with_clock(Arc::new(move || *clock.lock().unwrap()));
    let gw: LocalGateway = step(
        "gateway start",
        chat_app::app()
            .dev_auth()
            .history_store(history)
            .serve_local(config()),
    )
    .await
    .unwrap();
    let mut writer = connect(&gw, "writer").await;
    join(&mut writer, "old").await;
    let first = say(&mut writer, "old", "a").await;
    let last = say(&mut writer, "old", "b").await;
    // The chat's rule keeps frames for the default hour: two hours later all are gone.
    *now.lock().unwrap() = start_at + Duration::from_secs(2 * 60 * 60);

    let mut reader = connect(&gw, "reader").await;
    let since = first["seq"].as_u64().unwrap();
    send_json(
        &mut reader,
        &json!({"action": "resume",
                "rooms": [{"room": "old", "since": since, "epoch": first["epoch"]}]}),
    )
    .await;
    let (resumed, before) = recv_until(&mut reader, |f| f["action"] == "resumed").await;
    assert!(before.is_empty(), "nothing replayed: {before:?}");
    let entry = &resumed["rooms"][0];
    assert_eq!(entry["recovered"], false, "{resumed}");
    assert_eq!(entry["seq"], last["seq"], "the counter outlives the frames");
    assert_eq!(entry["epoch"], first["epoch"]);
    shutdown(gw).await;
}

#[tokio::test]
async fn refused_rooms_and_rooms_without_history() {
    let gw = start().await;
    let mut reader = connect(&gw, "reader").await;
    send_json(
        &mut reader,
        &json!({"action": "resume", "id": "x",
                "rooms": [{"room": "bad room!", "since": 0}, {"room": "fine", "since": 0}]}),
    )
    .await;
    let (resumed, _) = recv_until(&mut reader, |f| f["action"] == "resumed").await;
    let rooms = resumed["rooms"].as_array().unwrap();
    // The chat's room guard (the join route's check) refuses the first.
    assert_eq!(rooms[0]["room"], "bad room!");
    assert_eq!(rooms[0]["error"]["code"], "invalid_room");
    assert_eq!(rooms[1]["recovered"], true);
    assert_eq!(rooms[1]["seq"], 0);
    // The refused room was not joined; the other was.
    let me = request(&mut reader, json!({"action": "whoami"}), "whoami").await;
    assert_eq!(me["rooms"], json!(["fine"]));
    // The join route refuses the same room with the same code.
    let refused = request(
        &mut reader,
        json!({"action": "join", "room": "bad room!"}),
        "joined",
    )
    .await;
    assert_eq!(refused["error"]["code"], "invalid_room");
    shutdown(gw).await;
}

#[tokio::test]
async fn room_frames_carry_seq_and_epoch() {
    let gw = start().await;
    let mut a = connect(&gw, "a").await;
    join(&mut a, "seqs").await;
    let frames = {
        for i in 0..3 {
            send_json(&mut a, &line("seqs", &format!("m{i}"))).await;
        }
        room_frames_until(&mut a, |f| f["text"] == "m2").await
    };
    let seqs: Vec<u64> = frames.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(frames.iter().all(|f| f["epoch"] == frames[0]["epoch"]));
    assert!(frames[0]["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    shutdown(gw).await;
}

/// `{"action":"push","payload":P}`: joins room `h` and sends `P` to it.
async fn push(
    ctx: switchboard::Ctx,
    switchboard::Json(v): switchboard::Json<Value>,
) -> Result<(), switchboard::WsError> {
    ctx.join("h").await?;
    ctx.room("h").send(&v["payload"]).await?;
    Ok(())
}

/// `{"action":"pushBinary"}`: sends a binary frame to room `h`.
async fn push_binary(ctx: switchboard::Ctx) -> Result<(), switchboard::WsError> {
    ctx.join("h").await?;
    ctx.room("h")
        .send_frame(switchboard::Frame::binary(vec![1u8, 2, 3]))
        .await?;
    Ok(())
}

fn route(
    key: &'static str,
    handler: fn() -> switchboard::handler::BoxedHandler,
) -> switchboard::RouteDef {
    switchboard::RouteDef {
        key,
        kind: switchboard::RouteKind::Custom,
        function: key,
        module: module_path!(),
        location: switchboard::registry::SourceLocation {
            file: file!(),
            line: line!(),
        },
        options: switchboard::RouteOptions::default(),
        doc: "",
        handler,
    }
}

#[tokio::test]
async fn non_objects_are_refused_and_nothing_is_sent_or_stored() {
    use switchboard::handler::erase;
    let gw = step(
        "gateway start",
        switchboard::App::new()
            .dev_auth()
            .with_routes([
                route("push", || erase(push)),
                route("pushBinary", || erase(push_binary)),
            ])
            .history(switchboard::HistoryRule::rooms("h"))
            .serve_local(config()),
    )
    .await
    .unwrap();
    let mut ws = connect(&gw, "a").await;
    for payload in [json!("text"), json!([1, 2]), json!(7), json!(null)] {
        send_json(&mut ws, &json!({"action": "push", "payload": payload})).await;
        let answer = recv_json(&mut ws).await;
        assert_eq!(
            answer["error"]["code"], "not_an_object",
            "{payload}: {answer}"
        );
    }
    send_json(&mut ws, &json!({"action": "pushBinary"})).await;
    assert_eq!(recv_json(&mut ws).await["error"]["code"], "not_an_object");
    // Nothing was sent or stored: the first object is seq 1 and the only frame.
    send_json(
        &mut ws,
        &json!({"action": "push", "payload": {"k": 1, "seq": "mine"}}),
    )
    .await;
    let frame = recv_json(&mut ws).await;
    assert_eq!(
        (frame["k"].as_i64(), frame["seq"].as_u64()),
        (Some(1), Some(1)),
        "{frame}"
    );
    send_json(
        &mut ws,
        &json!({"action": "resume", "rooms": [{"room": "h", "since": 0}]}),
    )
    .await;
    let (resumed, replay) = recv_until(&mut ws, |f| f["action"] == "resumed").await;
    assert_eq!(replay, vec![frame]);
    assert_eq!(resumed["rooms"][0]["seq"], 1);
    shutdown(gw).await;
}
