//! The parts of the wire protocol every service has, whatever its routes: room history
//! stamps, the built-in `resume` route and its `resumed` answer, and request ids.
//!
//! - A frame sent to a room with history carries `"seq"` (per room, gap-free from 1) and
//!   `"epoch"` at its top level ([`ROOM_STAMP`]); frames of rooms without history carry
//!   neither, so both are optional in the schema.
//! - `{"action":"resume","rooms":[{"room","since","epoch"}]}` makes the caller a member
//!   again, replays every kept frame with `seq > since` and answers
//!   `{"action":"resumed","rooms":[{"room","epoch","seq","recovered"} | {"room","error"}]}`.
//! - Any client frame may carry `"id"` (1 to 64 characters); its route's answer (reply
//!   or error frame) carries the same `"id"` ([`CORRELATED`]).
//!
//! [`complete`] adds these to a [`ServiceContract`] (schemas, the route and its answer)
//! unless the registry's contract already has them, so the AsyncAPI document and the
//! TypeScript client describe the same protocol.

use serde_json::{Value, json};

use switchboard_core::contract::{
    RouteContract, SCHEMA_PATH, ServerMessage, ServiceContract, Shape,
};

pub use switchboard_core::names::history::{
    EPOCH_FIELD, ID_FIELD, MAX_REQUEST_ID_CHARS, MAX_RESUME_ROOMS, RESUME_ROUTE, RESUMED_ACTION,
    SEQ_FIELD,
};

/// The schema of `resume`'s payload.
pub const RESUME_REQUEST: &str = "ResumeRequest";
/// The schema of one room of a `resume`.
pub const RESUME_ROOM: &str = "ResumeRoom";
/// The schema (and message) of the `resumed` answer.
pub const RESUMED: &str = "Resumed";
/// The schema of one room of the `resumed` answer.
pub const RESUMED_ROOM: &str = "ResumedRoom";
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
    let error = json!({
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "Machine-readable, as in error frames."},
            "message": {"type": "string", "description": "For people."}
        },
        "required": ["code"]
    });
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
        (
            RESUME_ROOM,
            json!({
                "title": RESUME_ROOM,
                "description": "A room to resume: the last `seq` the client has of it, and that seq's epoch.",
                "type": "object",
                "properties": {
                    "room": {"type": "string", "description": "The room."},
                    "since": {"type": "integer", "minimum": 0, "default": 0, "description": "The last `seq` the client has (0: none)."},
                    EPOCH_FIELD: {"type": ["string", "null"], "description": "The epoch of `since`; null or absent: the client has nothing."}
                },
                "required": ["room"]
            }),
        ),
        (
            RESUME_REQUEST,
            json!({
                "title": RESUME_REQUEST,
                "description": "The rooms to resume after a reconnect.",
                "type": "object",
                "properties": {"rooms": {"type": "array", "items": schema_ref(RESUME_ROOM), "maxItems": MAX_RESUME_ROOMS}},
                "required": ["rooms"]
            }),
        ),
        (
            RESUMED_ROOM,
            json!({
                "title": RESUMED_ROOM,
                "description": "One room of the `resumed` answer: where its history is, or why the room was refused.",
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "room": {"type": "string"},
                            EPOCH_FIELD: {"type": "string", "description": "The room's epoch."},
                            SEQ_FIELD: {"type": "integer", "minimum": 0, "description": "The room's last `seq` (0: nothing sent yet)."},
                            "recovered": {"type": "boolean", "description": "true: every frame after `since` was replayed, before this answer; false: nothing was (another epoch, or the history no longer reaches back): reload the room's state."}
                        },
                        "required": ["room", EPOCH_FIELD, SEQ_FIELD, "recovered"]
                    },
                    {
                        "type": "object",
                        "properties": {"room": {"type": "string"}, "error": error},
                        "required": ["room", "error"]
                    }
                ]
            }),
        ),
        (
            RESUMED,
            json!({
                "title": RESUMED,
                "description": "The answer to `resume`, after the replayed frames.",
                "type": "object",
                "properties": {
                    "action": {"type": "string", "const": RESUMED_ACTION},
                    ID_FIELD: schema_ref(REQUEST_ID),
                    "rooms": {"type": "array", "items": schema_ref(RESUMED_ROOM)}
                },
                "required": ["action", "rooms"]
            }),
        ),
    ]
}

/// Whether the registry lists `resume` (an app with room history) but describes it as
/// the core describes every built-in (answered like `ping`), not as the protocol has it.
fn needs_resume_route(contract: &ServiceContract) -> bool {
    match contract.routes.iter().find(|r| r.key == RESUME_ROUTE) {
        None => false,
        Some(route) => route
            .reply
            .and_then(|i| contract.messages.get(i))
            .is_none_or(|m| m.action.as_deref() != Some(RESUMED_ACTION)),
    }
}

/// `contract` with the protocol's schemas and, when the app has `resume` (it keeps room
/// history), that route's payload and its `resumed` answer.
pub fn complete(contract: &ServiceContract) -> ServiceContract {
    let mut out = contract.clone();
    for (name, schema) in schemas() {
        out.schemas.entry(name.to_owned()).or_insert(schema);
    }
    if !needs_resume_route(&out) {
        return out;
    }
    let reply = match out
        .messages
        .iter()
        .position(|m| m.action.as_deref() == Some(RESUMED_ACTION))
    {
        Some(i) => i,
        None => {
            out.messages.push(ServerMessage {
                name: RESUMED.to_owned(),
                shape: Shape::Schema(schema_ref(RESUMED)),
                action: Some(RESUMED_ACTION.to_owned()),
                pushed: false,
                senders: vec![RESUME_ROUTE.to_owned()],
            });
            out.messages.len() - 1
        }
    };
    let route = RouteContract {
        key: RESUME_ROUTE,
        doc: "Built-in: after a reconnect, rejoins rooms and replays the frames missed since `since` \
              (with `seq` and `epoch`), then answers `resumed`."
            .to_owned(),
        builtin: true,
        payload: Some(Shape::Schema(schema_ref(RESUME_REQUEST))),
        reply: Some(reply),
        reply_optional: false,
    };
    if let Some(existing) = out.routes.iter_mut().find(|r| r.key == RESUME_ROUTE) {
        // The message the core had it answer (`Pong`) is not sent by `resume`.
        if let Some(old) = existing.reply.and_then(|i| out.messages.get_mut(i)) {
            old.senders.retain(|s| s != RESUME_ROUTE);
        }
        *existing = route;
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

/// The sample contract as the core lists it for an app with history: `resume` is a
/// built-in answered like `ping` (for the generators' tests).
#[cfg(test)]
pub(crate) fn sample_with_history() -> ServiceContract {
    let mut contract = switchboard_core::contract::sample::sample();
    if let Some(ping) = contract.routes.iter().find(|r| r.key == "ping") {
        let mut resume = ping.clone();
        resume.key = RESUME_ROUTE;
        if let Some(pong) = resume.reply.and_then(|i| contract.messages.get_mut(i)) {
            pong.senders.push(RESUME_ROUTE.to_owned());
        }
        contract.routes.push(resume);
    }
    contract
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn without_history_there_is_no_resume_but_the_schemas_are_there() {
        let contract = complete(&switchboard_core::contract::sample::sample());
        assert!(contract.routes.iter().all(|r| r.key != RESUME_ROUTE));
        assert!(
            contract
                .messages
                .iter()
                .all(|m| m.action.as_deref() != Some(RESUMED_ACTION))
        );
        assert!(contract.schemas.contains_key(ROOM_STAMP));
        assert!(contract.schemas.contains_key(CORRELATED));
    }

    #[test]
    fn complete_describes_resume_its_answer_and_the_schemas_once() {
        let contract = complete(&sample_with_history());
        let resume = contract
            .routes
            .iter()
            .find(|r| r.key == RESUME_ROUTE)
            .unwrap();
        assert!(resume.builtin);
        assert_eq!(
            resume.payload.as_ref().unwrap().ref_name(),
            Some(RESUME_REQUEST)
        );
        let reply = &contract.messages[resume.reply.unwrap()];
        assert_eq!(reply.action.as_deref(), Some(RESUMED_ACTION));
        for name in [
            RESUME_REQUEST,
            RESUME_ROOM,
            RESUMED,
            RESUMED_ROOM,
            ROOM_STAMP,
            CORRELATED,
            REQUEST_ID,
        ] {
            assert!(contract.schemas.contains_key(name), "{name}");
        }
        assert_eq!(contract.schemas[REQUEST_ID]["maxLength"], 64);
        // Idempotent: completing again adds nothing.
        let again = complete(&contract);
        assert_eq!(again.routes.len(), contract.routes.len());
        assert_eq!(again.messages.len(), contract.messages.len());
        assert!(replies(&contract).contains(&resume.reply.unwrap()));
    }

    #[test]
    fn a_resume_answered_like_ping_is_replaced() {
        let done = complete(&sample_with_history());
        let resumes: Vec<&RouteContract> = done
            .routes
            .iter()
            .filter(|r| r.key == RESUME_ROUTE)
            .collect();
        assert_eq!(resumes.len(), 1);
        assert_eq!(
            done.messages[resumes[0].reply.unwrap()].action.as_deref(),
            Some(RESUMED_ACTION)
        );
        let pong = done.messages.iter().find(|m| m.name == "Pong").unwrap();
        assert_eq!(pong.senders, ["ping"], "resume does not answer pong");
    }
}
