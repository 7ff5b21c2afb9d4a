//! Request ids: any client frame may carry `"id"`, a string of 1 to
//! [`MAX_REQUEST_ID_CHARS`] characters; the frame its route answers with (the response,
//! a `ctx.reply(..)`, or the error frame) carries the same `"id"` at the top level, so a
//! client can match answers to requests sent concurrently on one socket. An `id` that is
//! not such a string is refused with a `bad_payload` error frame that carries no id.
//! A route's answer that is not a JSON object (a string, an array, binary) cannot carry
//! one and is sent unchanged.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::names::history::{ID_FIELD, MAX_REQUEST_ID_CHARS};
use crate::response::{Frame, WsError};

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
}

/// A present field, `null` included (`Option`'s own impl would read `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The request id of a client frame: `Ok(None)` when it has none (or is not a JSON
/// object), a `bad_payload` error when its `id` is not a string of 1 to
/// [`MAX_REQUEST_ID_CHARS`] characters.
pub fn request_id(body: Option<&str>) -> Result<Option<String>, WsError> {
    let Some(body) = body else {
        return Ok(None);
    };
    // Only the `id` is kept; every other field is skipped without being built.
    let Ok(Probe { id: Some(raw) }) = serde_json::from_str::<Probe<'_>>(body) else {
        return Ok(None);
    };
    let invalid = || {
        WsError::bad_payload(format!(
            "`{ID_FIELD}` must be a string of 1 to {MAX_REQUEST_ID_CHARS} characters"
        ))
    };
    let id: String = serde_json::from_str(raw.get()).map_err(|_| invalid())?;
    if (1..=MAX_REQUEST_ID_CHARS).contains(&id.chars().count()) {
        Ok(Some(id))
    } else {
        Err(invalid())
    }
}

/// `frame` with `"id": id` at its top level (replacing an `id` of its own), when it is a
/// JSON object; any other frame unchanged.
pub fn with_request_id(frame: Frame, id: &str) -> Frame {
    let Some(text) = frame.as_text() else {
        return frame;
    };
    let Ok(mut map) = serde_json::from_str::<Map<String, Value>>(text) else {
        return frame;
    };
    map.insert(ID_FIELD.to_owned(), Value::from(id));
    Frame::json(&map).unwrap_or(frame)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_read_and_checked() {
        assert_eq!(request_id(None), Ok(None));
        assert_eq!(request_id(Some(r#"{"action":"x"}"#)), Ok(None));
        assert_eq!(request_id(Some("not json")), Ok(None));
        assert_eq!(request_id(Some(r#"[1,2]"#)), Ok(None));
        assert_eq!(
            request_id(Some(r#"{"action":"x","id":"a-1"}"#)),
            Ok(Some("a-1".to_owned()))
        );
        let long = "é".repeat(64);
        assert_eq!(
            request_id(Some(&format!(r#"{{"id":"{long}"}}"#))),
            Ok(Some(long))
        );
        for bad in [
            r#"{"id":""}"#,
            r#"{"id":null}"#,
            r#"{"id":5}"#,
            r#"{"id":{"a":1}}"#,
            r#"{"id":["a"]}"#,
        ] {
            let e = request_id(Some(bad)).unwrap_err();
            assert_eq!(e.code(), "bad_payload", "{bad}");
        }
        let too_long = format!(r#"{{"id":"{}"}}"#, "x".repeat(65));
        assert!(request_id(Some(&too_long)).is_err());
    }

    #[test]
    fn answers_carry_the_id() {
        let f = with_request_id(Frame::text(r#"{"action":"pong","id":"old"}"#), "r1");
        let v: Value = serde_json::from_str(f.as_text().unwrap()).unwrap();
        assert_eq!(v["id"], "r1");
        assert_eq!(v["action"], "pong");
        let err = with_request_id(WsError::forbidden("no").to_frame("join"), "r2");
        let v: Value = serde_json::from_str(err.as_text().unwrap()).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["error"]["code"].as_str()),
            (Some("r2"), Some("forbidden"))
        );
        assert_eq!(
            with_request_id(Frame::text("\"s\""), "r3"),
            Frame::text("\"s\"")
        );
        assert_eq!(
            with_request_id(Frame::binary(vec![1u8, 2]), "r4"),
            Frame::binary(vec![1u8, 2])
        );
    }
}
