//! The parts of the wire protocol that every service's messages have, whatever its
//! routes: room history stamps and request ids. (The built-in `resume` route and its
//! `resumed` answer are described by the core's contract, from `switchboard_core::rooms`.)
//!
//! - A frame sent to a room with history carries `"seq"` (per room, gap-free from 1) and
//!   `"epoch"` at its top level ([`ROOM_STAMP`]); frames of rooms without history carry
//!   neither, so both are optional in the schema.
//! - Any client frame may carry `"id"` (1 to 64 characters); its route's answer (reply
//!   or error frame) carries the same `"id"` ([`CORRELATED`]).
//!
//! [`complete`] adds these schemas to a [`ServiceContract`], so the AsyncAPI document and
//! the TypeScript client describe the same protocol.

use serde_json::{Value, json};

use switchboard_core::contract::{SCHEMA_PATH, ServiceContract};

pub use switchboard_core::names::history::{
    EPOCH_FIELD, ID_FIELD, MAX_REQUEST_ID_CHARS, SEQ_FIELD,
};

/// The schema of `seq` and `epoch` on room frames.
pub const ROOM_STAMP: &str = "RoomStamp";
/// The schema of a frame that may carry a request id.
pub const CORRELATED: &str = "Correlated";
/// The schema of a request id.
pub const REQUEST_ID: &str = "RequestId";

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#{SCHEMA_PATH}/{name}")})
}

/// The protocol's named schemas (draft-07, `$ref`s into [`SCHEMA_PATH`]).
pub fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            REQUEST_ID,
            json!({
                "title": REQUEST_ID,
                "description": "A request id: any client frame may carry one; the route's answer (reply or error frame) carries the same.",
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_REQUEST_ID_CHARS
            }),
        ),
        (
            CORRELATED,
            json!({
                "title": CORRELATED,
                "description": "The request id of the client frame this frame answers, when it had one.",
                "type": "object",
                "properties": {ID_FIELD: schema_ref(REQUEST_ID)}
            }),
        ),
        (
            ROOM_STAMP,
            json!({
                "title": ROOM_STAMP,
                "description": "Added at the top level of every frame sent to a room with history (absent otherwise).",
                "type": "object",
                "properties": {
                    SEQ_FIELD: {"type": "integer", "minimum": 1, "description": "The frame's place in its room: per room, gap-free, increasing from 1."},
                    EPOCH_FIELD: {"type": "string", "description": "The room's history epoch: it changes when the room's history was lost or reset."}
                }
            }),
        ),
    ]
}

/// `contract` with the protocol's schemas (an app's own schema of the same name wins).
pub fn complete(contract: &ServiceContract) -> ServiceContract {
    let mut out = contract.clone();
    for (name, schema) in schemas() {
        out.schemas.entry(name.to_owned()).or_insert(schema);
    }
    out
}

/// The indices of the messages that answer a route (and so may carry a request id).
pub fn replies(contract: &ServiceContract) -> Vec<usize> {
    let mut out: Vec<usize> = contract.routes.iter().filter_map(|r| r.reply).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The sample contract as the core lists it for an app with room history: the built-in
/// `resume` with its payload and its `resumed` answer (for the generators' tests).
#[cfg(test)]
pub(crate) fn sample_with_resume() -> ServiceContract {
    use switchboard_core::contract::{RouteContract, ServerMessage, Shape};
    use switchboard_core::names::history::{RESUME_ROUTE, RESUMED_ACTION};
    let mut contract = switchboard_core::contract::sample::sample();
    contract.messages.push(ServerMessage {
        name: "Resumed".to_owned(),
        shape: Shape::Schema(schema_ref("Resumed")),
        action: Some(RESUMED_ACTION.to_owned()),
        pushed: false,
        senders: vec![RESUME_ROUTE.to_owned()],
    });
    contract.routes.push(RouteContract {
        key: RESUME_ROUTE,
        doc: "Rejoins rooms after a reconnect.".to_owned(),
        builtin: true,
        payload: Some(Shape::Schema(schema_ref("ResumeRequest"))),
        reply: Some(contract.messages.len() - 1),
        reply_optional: false,
    });
    contract.schemas.insert(
        "ResumeRequest".to_owned(),
        json!({"type": "object", "properties": {"rooms": {"type": "array"}}, "required": ["rooms"]}),
    );
    contract.schemas.insert(
        "Resumed".to_owned(),
        json!({"type": "object", "properties": {"action": {"type": "string", "const": RESUMED_ACTION}}, "required": ["action"]}),
    );
    contract
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn complete_adds_the_stamp_and_id_schemas_and_keeps_an_apps_own() {
        let mut sample = switchboard_core::contract::sample::sample();
        sample
            .schemas
            .insert(ROOM_STAMP.to_owned(), json!({"title": "mine"}));
        let contract = complete(&sample);
        assert_eq!(contract.schemas[ROOM_STAMP]["title"], "mine");
        assert_eq!(contract.schemas[REQUEST_ID]["maxLength"], 64);
        assert_eq!(
            contract.schemas[CORRELATED]["properties"][ID_FIELD]["$ref"],
            "#/components/schemas/RequestId"
        );
        assert_eq!(contract.routes.len(), sample.routes.len());
        let join = contract.routes.iter().find(|r| r.key == "join").unwrap();
        assert!(replies(&contract).contains(&join.reply.unwrap()));
        // A pushed-only message answers nothing.
        let presence = contract
            .messages
            .iter()
            .position(|m| m.name == "Presence")
            .unwrap();
        assert!(!replies(&contract).contains(&presence));
    }
}
