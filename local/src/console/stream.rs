//! `GET /local/stream`: the console's one live stream, as server-sent events.
//!
//! Each console gets its own bounded queue ([`Feed::subscribe`](super::Feed::subscribe)).
//! The response body is pulled by the connection only as fast as the browser reads; a
//! console that stops reading fills its queue, and the gateway drops (and counts) its
//! events instead of waiting. When it reads again it first learns how many it missed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::error;
use super::feed::Subscription;
use crate::Gateway;

/// `GET /local/stream`.
pub(super) async fn stream(State(gateway): State<Arc<Gateway>>) -> Response {
    let Some(subscription) = gateway.console.subscribe() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many consoles are open; close one",
        );
    };
    let hello = format!(
        "retry: 2000\ndata: {{\"type\":\"hello\",\"t\":{}}}\n\n",
        crate::now()
    );
    let state = (subscription, 0u64, Some(Bytes::from(hello)));
    let body = futures_util::stream::unfold(state, next_event);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

type StreamState = (Subscription, u64, Option<Bytes>);

/// The next chunk of the stream: the greeting, a note of events missed since the last
/// one, or the next event; the stream ends when the gateway's feed does.
async fn next_event(
    (mut sub, mut reported, first): StreamState,
) -> Option<(Result<Bytes, std::convert::Infallible>, StreamState)> {
    if let Some(first) = first {
        return Some((Ok(first), (sub, reported, None)));
    }
    let event = sub.rx.recv().await?;
    let dropped = sub.dropped.load(Ordering::Relaxed);
    let mut chunk = String::with_capacity(event.len() + 64);
    if dropped != reported {
        chunk.push_str(&format!(
            "data: {{\"type\":\"dropped\",\"count\":{dropped}}}\n\n"
        ));
        reported = dropped;
    }
    chunk.push_str("data: ");
    chunk.push_str(&event);
    chunk.push_str("\n\n");
    Some((Ok(Bytes::from(chunk)), (sub, reported, None)))
}
