//! Room history and `resume`. `history.stale_epoch`, `history.no_epoch` and
//! `history.refused_rooms` moved from `tests/tests/history.rs` (the drop-and-resume
//! scenarios stay there: they share a module with the DynamoDB run).

use serde_json::{Value, json};

use super::Probe;
use crate::client::Client;
use crate::run::Verdict;
use crate::target::Target;

/// Sends a line to `room` and returns the room frame that carries it.
async fn say(c: &mut Client, room: &str, text: &str) -> Result<Value, String> {
    c.send_json(&json!({"action": "sendMessage", "room": room, "text": text}))
        .await?;
    Ok(
        c.recv_until(|f| f["action"] == "message" && f["text"] == text)
            .await?
            .0,
    )
}

pub(super) async fn seq_epoch(t: &Target) -> Probe {
    let room = t.unique("seqs");
    let mut a = t.connect(&t.unique("a")).await?;
    a.join(&room).await?;
    let one = say(&mut a, &room, "one").await?;
    let two = say(&mut a, &room, "two").await?;
    a.close().await;
    let s1 = one["seq"]
        .as_u64()
        .ok_or_else(|| format!("no seq: {one}"))?;
    ensure!(
        two["seq"].as_u64() == Some(s1 + 1),
        "seqs {} then {}",
        one["seq"],
        two["seq"]
    );
    ensure!(
        one["epoch"].as_str().is_some_and(|e| !e.is_empty()),
        "no epoch: {one}"
    );
    ensure!(
        one["epoch"] == two["epoch"],
        "epochs {} and {}",
        one["epoch"],
        two["epoch"]
    );
    Ok(Verdict::Pass(format!("seq {s1}, {}; one epoch", s1 + 1)))
}

pub(super) async fn resume(t: &Target) -> Probe {
    let room = t.unique("resume");
    let mut writer = t.connect(&t.unique("writer")).await?;
    writer.join(&room).await?;
    let mark = say(&mut writer, &room, "before").await?;
    let since = mark["seq"]
        .as_u64()
        .ok_or_else(|| format!("no seq: {mark}"))?;
    let texts: Vec<String> = (0..5).map(|i| format!("missed {i}")).collect();
    for text in &texts {
        say(&mut writer, &room, text).await?;
    }
    let mut reader = t.connect(&t.unique("reader")).await?;
    reader
        .send_json(&json!({"action": "resume", "id": "r1",
            "rooms": [{"room": room, "since": since, "epoch": mark["epoch"]}]}))
        .await?;
    let (resumed, replay) = reader.recv_until(|f| f["action"] == "resumed").await?;
    let seqs: Vec<u64> = replay.iter().filter_map(|f| f["seq"].as_u64()).collect();
    let got: Vec<&str> = replay.iter().filter_map(|f| f["text"].as_str()).collect();
    ensure!(got == texts, "replayed {got:?}");
    let last = since + 5;
    ensure!(
        seqs == (since + 1..=last).collect::<Vec<_>>(),
        "replayed seqs {seqs:?}"
    );
    ensure!(resumed["id"] == "r1", "{resumed}");
    let entry = &resumed["rooms"][0];
    ensure!(
        entry["recovered"] == true && entry["seq"] == last && entry["epoch"] == mark["epoch"],
        "{resumed}"
    );
    let live = say(&mut writer, &room, "live").await?;
    let (got, _) = reader.recv_until(|f| f["action"] == "message").await?;
    reader.close().await;
    writer.close().await;
    ensure!(
        got["text"] == "live" && got["seq"] == live["seq"],
        "live frame {got}"
    );
    Ok(Verdict::Pass(format!(
        "5 frames replayed after seq {since}, then live"
    )))
}

pub(super) async fn stale_epoch(t: &Target) -> Probe {
    let room = t.unique("epochs");
    let mut writer = t.connect(&t.unique("writer")).await?;
    writer.join(&room).await?;
    let first = say(&mut writer, &room, "one").await?;
    let last = say(&mut writer, &room, "two").await?;
    ensure!(
        last["seq"].as_u64() == first["seq"].as_u64().map(|s| s + 1),
        "{first} {last}"
    );
    let mut reader = t.connect(&t.unique("reader")).await?;
    reader
        .send_json(&json!({"action": "resume", "id": "e1",
            "rooms": [{"room": room, "since": 1, "epoch": "an-epoch-of-another-life"}]}))
        .await?;
    let (resumed, before) = reader.recv_until(|f| f["action"] == "resumed").await?;
    ensure!(before.is_empty(), "replayed: {before:?}");
    ensure!(resumed["id"] == "e1", "{resumed}");
    let entry = &resumed["rooms"][0];
    ensure!(entry["recovered"] == false, "{resumed}");
    ensure!(
        entry["epoch"] == last["epoch"] && entry["seq"] == last["seq"],
        "{resumed}"
    );
    let live = say(&mut writer, &room, "three").await?;
    let (got, _) = reader.recv_until(|f| f["action"] == "message").await?;
    reader.close().await;
    writer.close().await;
    ensure!(got["text"] == "three" && got["seq"] == live["seq"], "{got}");
    Ok(Verdict::Pass(
        "recovered:false, nothing replayed, live after".into(),
    ))
}

pub(super) async fn no_epoch(t: &Target) -> Probe {
    let room = t.unique("fresh");
    let mut writer = t.connect(&t.unique("writer")).await?;
    writer.join(&room).await?;
    for i in 0..5 {
        say(&mut writer, &room, &format!("l{i}")).await?;
    }
    let mut reader = t.connect(&t.unique("reader")).await?;
    reader
        .send_json(
            &json!({"action": "resume", "rooms": [{"room": room, "since": 0, "epoch": null}]}),
        )
        .await?;
    let (resumed, replay) = reader.recv_until(|f| f["action"] == "resumed").await?;
    reader.close().await;
    writer.close().await;
    let seqs: Vec<u64> = replay.iter().filter_map(|f| f["seq"].as_u64()).collect();
    let last = resumed["rooms"][0]["seq"]
        .as_u64()
        .ok_or_else(|| format!("{resumed}"))?;
    ensure!(seqs == (1..=last).collect::<Vec<_>>(), "{replay:?}");
    ensure!(resumed["rooms"][0]["recovered"] == true, "{resumed}");
    let texts: Vec<&str> = replay.iter().filter_map(|f| f["text"].as_str()).collect();
    ensure!(texts == ["l0", "l1", "l2", "l3", "l4"], "{texts:?}");
    ensure!(resumed.get("id").is_none(), "no id asked, yet {resumed}");
    Ok(Verdict::Pass(format!("all {last} kept frames replayed")))
}

pub(super) async fn refused_rooms(t: &Target) -> Probe {
    let fine = t.unique("fine");
    let mut reader = t.connect(&t.unique("reader")).await?;
    reader
        .send_json(&json!({"action": "resume", "id": "x",
            "rooms": [{"room": "bad room!", "since": 0}, {"room": fine, "since": 0}]}))
        .await?;
    let (resumed, _) = reader.recv_until(|f| f["action"] == "resumed").await?;
    let rooms = resumed["rooms"].as_array().cloned().unwrap_or_default();
    ensure!(rooms.len() == 2, "{resumed}");
    ensure!(
        rooms[0]["room"] == "bad room!" && rooms[0]["error"]["code"] == "invalid_room",
        "{resumed}"
    );
    ensure!(
        rooms[1]["recovered"] == true && rooms[1]["seq"] == 0,
        "{resumed}"
    );
    let me = reader
        .request(json!({"action": "whoami"}), "whoami")
        .await?;
    ensure!(me["rooms"] == json!([fine]), "{me}");
    let refused = reader
        .request(json!({"action": "join", "room": "bad room!"}), "joined")
        .await?;
    reader.close().await;
    ensure!(refused["error"]["code"] == "invalid_room", "{refused}");
    Ok(Verdict::Pass(
        "invalid_room refused, the other joined".into(),
    ))
}
