//! What handlers return: route responses ([`Frame`], [`IntoWsResponse`]) and errors
//! ([`WsError`]), which reach a WebSocket sender as error frames
//! `{"error":{"code":..,"message":..,"route":..}}` and an HTTP caller as
//! `{"error":{"code":..,"message":..}}` with the error's status.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Serialize;

use crate::extract::Json;

/// One WebSocket message to send: text (usually JSON) or binary.
///
/// Cheap to clone (reference-counted bytes): a fan-out serialises once and clones.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// Always valid UTF-8 (checked where the frame is made).
    Text(Bytes),
    Binary(Bytes),
}

/// A frame's kind and bytes, for a transport (the local gateway's WebSocket writer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameData {
    /// A text frame: valid UTF-8.
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
}

impl Frame {
    /// A text frame.
    pub fn text(text: impl Into<String>) -> Self {
        Self(Repr::Text(Bytes::from(text.into())))
    }

    /// A static text frame, without allocating.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Repr::Text(Bytes::from_static(text.as_bytes())))
    }

    /// A text frame holding `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, WsError> {
        serde_json::to_string(value)
            .map(Self::text)
            .map_err(|e| WsError::internal(format!("could not serialise a frame: {e}")))
    }

    /// A binary frame.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self(Repr::Binary(bytes.into()))
    }

    /// Data received from the `@connections` API or a queue: text when it is UTF-8
    /// (which is what API Gateway sends for JSON), binary otherwise.
    pub fn from_bytes(bytes: Bytes) -> Self {
        // One validation; the clone is a reference count.
        if std::str::from_utf8(&bytes).is_ok() {
            Self(Repr::Text(bytes))
        } else {
            Self(Repr::Binary(bytes))
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Text(b) | Repr::Binary(b) => b,
        }
    }

    /// The text, for a text frame.
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            // Valid by construction; checked again rather than trusted (no unsafe).
            Repr::Text(t) => std::str::from_utf8(t).ok(),
            Repr::Binary(_) => None,
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as a shared buffer (no copy).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Text(b) | Repr::Binary(b) => b.clone(),
        }
    }

    /// Whether this is a text frame.
    pub fn is_text(&self) -> bool {
        matches!(self.0, Repr::Text(_))
    }

    /// The frame's kind and bytes, for a transport.
    pub fn into_data(self) -> FrameData {
        match self.0 {
            Repr::Text(b) => FrameData::Text(b),
            Repr::Binary(b) => FrameData::Binary(b),
        }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Text(t) => f
                .debug_tuple("Frame::Text")
                .field(&String::from_utf8_lossy(t))
                .finish(),
            Repr::Binary(b) => f.debug_tuple("Frame::Binary").field(&b.len()).finish(),
        }
    }
}

/// An error a handler (or the framework) reports: the one error type of WebSocket and
/// HTTP handlers alike.
///
/// - Over WebSocket it reaches the sender as an error frame ([`to_frame`](Self::to_frame)):
///   `{"error":{"code":"..","message":"..","route":".."}}`. On `$connect` the error's
///   [`status`](Self::status) becomes the HTTP status of the refused upgrade.
/// - From an HTTP handler it is the response (axum's `IntoResponse`, implemented in
///   [`crate::http`]): `{"error":{"code":"..","message":".."}}` with its status
///   (500 if the status is not a valid HTTP status). [`HttpError`](crate::http::HttpError)
///   is the same type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WsError {
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    status: u16,
}

impl WsError {
    /// An error with an application-defined code (e.g. `"not_in_room"`), status 400.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status: 400,
        }
    }

    /// The request is malformed (`bad_request`, 400).
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("bad_request", message)
    }

    /// The payload does not fit the route's type (`bad_payload`, 400).
    pub fn bad_payload(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("bad_payload", message)
    }

    /// The action matches no route (`unknown_route`, 404).
    pub fn unknown_route(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("unknown_route", message).with_status(404)
    }

    /// The caller is not allowed to do this (`forbidden`, 403).
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("forbidden", message).with_status(403)
    }

    /// The caller is not authenticated (`unauthorized`, 401).
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("unauthorized", message).with_status(401)
    }

    /// Something the request names does not exist (`not_found`, 404).
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("not_found", message).with_status(404)
    }

    /// A failure on our side (`internal`, 500). The detail is logged; the sender sees
    /// only "internal error".
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error in a handler");
        Self {
            code: Cow::Borrowed("internal"),
            message: Cow::Borrowed("internal error"),
            status: 500,
        }
    }

    /// Sets the HTTP status (of an HTTP response, or of a refused `$connect`).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status (of an HTTP response, or of a refused `$connect`).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The error frame sent to the caller of `route`.
    pub fn to_frame(&self, route: &str) -> Frame {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            route: &'a str,
        }
        let body = Body {
            error: Inner {
                code: &self.code,
                message: &self.message,
                route,
            },
        };
        // Serialising three strings cannot fail.
        serde_json::to_string(&body)
            .map(Frame::text)
            .unwrap_or_else(|_| Frame::from_static(r#"{"error":{"code":"internal"}}"#))
    }
}

/// What a handler may return. The value becomes the route response: the frame API
/// Gateway sends back to the caller, with no `@connections` call.
///
/// Implemented for `()` (no response), [`Frame`], [`Json<T>`], `String`, `&'static str`,
/// `serde_json::Value`, `Option<T>`, and `Result<T, E>` where `E: Into<WsError>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a Switchboard handler",
    note = "return `()`, `Json<T>`, `Frame`, `String`, or `Result<T, E>` where `T` is one of those and `E: Into<WsError>`"
)]
pub trait IntoWsResponse {
    /// Whether values of this type can carry a response body.
    const HAS_BODY: bool;
    /// Converts into the route response body (or an error frame).
    fn into_ws_response(self) -> Result<Option<Frame>, WsError>;
}

impl IntoWsResponse for () {
    const HAS_BODY: bool = false;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        Ok(None)
    }
}

impl IntoWsResponse for Frame {
    const HAS_BODY: bool = true;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        Ok(Some(self))
    }
}

impl<T: Serialize> IntoWsResponse for Json<T> {
    const HAS_BODY: bool = true;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        Frame::json(&self.0).map(Some)
    }
}

impl IntoWsResponse for serde_json::Value {
    const HAS_BODY: bool = true;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        Frame::json(&self).map(Some)
    }
}

impl IntoWsResponse for String {
    const HAS_BODY: bool = true;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        Ok(Some(Frame::text(self)))
    }
}

impl IntoWsResponse for &'static str {
    const HAS_BODY: bool = true;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        Ok(Some(Frame::from_static(self)))
    }
}

impl<T: IntoWsResponse> IntoWsResponse for Option<T> {
    const HAS_BODY: bool = T::HAS_BODY;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        match self {
            Some(v) => v.into_ws_response(),
            None => Ok(None),
        }
    }
}

impl<T: IntoWsResponse, E: Into<WsError>> IntoWsResponse for Result<T, E> {
    const HAS_BODY: bool = T::HAS_BODY;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        match self {
            Ok(v) => v.into_ws_response(),
            Err(e) => Err(e.into()),
        }
    }
}

impl IntoWsResponse for WsError {
    const HAS_BODY: bool = false;
    fn into_ws_response(self) -> Result<Option<Frame>, WsError> {
        Err(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frame_shape() {
        let frame = WsError::bad_payload("missing field `room`").to_frame("join");
        let v: serde_json::Value =
            serde_json::from_str(frame.as_text().unwrap_or("")).unwrap_or_default();
        assert_eq!(v["error"]["code"], "bad_payload");
        assert_eq!(v["error"]["message"], "missing field `room`");
        assert_eq!(v["error"]["route"], "join");
    }

    #[test]
    fn internal_errors_hide_details() {
        let e = WsError::internal("db password wrong");
        assert_eq!(e.message(), "internal error");
        assert_eq!(e.status(), 500);
    }

    #[test]
    fn response_conversions() {
        assert_eq!(().into_ws_response(), Ok(None));
        const { assert!(!<() as IntoWsResponse>::HAS_BODY) };
        const { assert!(<Result<Json<u8>, WsError> as IntoWsResponse>::HAS_BODY) };
        let r: Result<Json<u8>, WsError> = Ok(Json(7));
        assert_eq!(r.into_ws_response(), Ok(Some(Frame::text("7"))));
        let r: Result<(), WsError> = Err(WsError::forbidden("no"));
        assert_eq!(r.into_ws_response().map_err(|e| e.status()), Err(403));
    }

    #[test]
    fn frame_from_bytes_detects_text() {
        assert!(
            Frame::from_bytes(Bytes::from_static(b"hi"))
                .as_text()
                .is_some()
        );
        assert!(
            Frame::from_bytes(Bytes::from_static(&[0xff, 0xfe]))
                .as_text()
                .is_none()
        );
    }
}
