//! The console's live feed: what the gateway's hot paths report, fanned out to the open
//! consoles through one bounded queue each.
//!
//! The hooks cost one relaxed atomic load while no console is subscribed. With consoles
//! subscribed, an event is built only if at least one of them has room for it; a console
//! that stops reading (a hidden tab, a stalled socket) fills its queue, and from then on
//! its events are dropped and counted, never waited for.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use switchboard_core::dispatch::Outcome;
use switchboard_core::response::Frame;

use super::metrics::Metrics;
use crate::Live;

/// Events queued per console before its events are dropped.
pub(crate) const SUBSCRIBER_BUFFER: usize = 512;

/// Consoles subscribed at once; more are refused (503).
pub(crate) const MAX_SUBSCRIBERS: usize = 8;

/// The longest payload an event carries; longer ones are cut (and marked so).
pub(crate) const PAYLOAD_PREVIEW: usize = 4096;

/// One console's queue.
struct Subscriber {
    tx: mpsc::Sender<Arc<str>>,
    dropped: Arc<AtomicU64>,
}

/// A console's end of the feed.
pub(crate) struct Subscription {
    /// Events, as JSON.
    pub(crate) rx: mpsc::Receiver<Arc<str>>,
    /// Events this console missed because its queue was full.
    pub(crate) dropped: Arc<AtomicU64>,
}

/// The feed and the always-on metrics of one gateway.
pub(crate) struct Feed {
    active: AtomicUsize,
    /// Read-locked on the hot path (publishers never wait for each other); written only
    /// to add, prune or close consoles.
    subscribers: RwLock<Vec<Subscriber>>,
    /// Events dropped for consoles that are gone (the open ones count their own).
    retired_drops: AtomicU64,
    /// Latency histograms and samples (charts).
    pub(crate) metrics: Metrics,
}

impl Feed {
    /// A feed with latency histograms for `routes`.
    pub(crate) fn new(routes: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            active: AtomicUsize::new(0),
            subscribers: RwLock::new(Vec::new()),
            retired_drops: AtomicU64::new(0),
            metrics: Metrics::new(routes),
        }
    }

    /// Whether any console is subscribed: the hot path's only cost otherwise.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Consoles subscribed.
    pub(crate) fn subscribers(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Events dropped so far for consoles that did not keep up.
    pub(crate) fn dropped(&self) -> u64 {
        let open: u64 = self
            .subscribers
            .read()
            .map(|subs| subs.iter().map(|s| s.dropped.load(Ordering::Relaxed)).sum())
            .unwrap_or(0);
        open + self.retired_drops.load(Ordering::Relaxed)
    }

    /// Removes the consoles `keep` rejects, keeping their drop counts.
    fn retire(&self, subs: &mut Vec<Subscriber>, keep: impl Fn(&Subscriber) -> bool) {
        subs.retain(|s| {
            let kept = keep(s);
            if !kept {
                let n = s.dropped.load(Ordering::Relaxed);
                self.retired_drops.fetch_add(n, Ordering::Relaxed);
            }
            kept
        });
        self.active.store(subs.len(), Ordering::Relaxed);
    }

    /// Each console's queue: events waiting and events dropped.
    pub(crate) fn queues(&self) -> Vec<(usize, u64)> {
        self.subscribers
            .read()
            .map(|subs| {
                subs.iter()
                    .filter(|s| !s.tx.is_closed())
                    .map(|s| {
                        let queued = s.tx.max_capacity() - s.tx.capacity();
                        (queued, s.dropped.load(Ordering::Relaxed))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A new console's queue, or `None` when [`MAX_SUBSCRIBERS`] are open.
    pub(crate) fn subscribe(&self) -> Option<Subscription> {
        let mut subs = self.subscribers.write().ok()?;
        self.retire(&mut subs, |s| !s.tx.is_closed());
        if subs.len() >= MAX_SUBSCRIBERS {
            return None;
        }
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let dropped = Arc::new(AtomicU64::new(0));
        subs.push(Subscriber {
            tx,
            dropped: Arc::clone(&dropped),
        });
        self.active.store(subs.len(), Ordering::Relaxed);
        Some(Subscription { rx, dropped })
    }

    /// Whether an event would reach at least one console (one has room for it).
    pub(crate) fn wants(&self) -> bool {
        self.active()
            && self
                .subscribers
                .read()
                .is_ok_and(|subs| subs.iter().any(|s| s.tx.capacity() > 0))
    }

    /// Sends the event `build` makes to every console with room; counts a drop for
    /// every console without. `build` runs only if some console has room.
    pub(crate) fn publish(&self, build: impl FnOnce() -> Value) {
        if !self.active() {
            return;
        }
        let Ok(subs) = self.subscribers.read() else {
            return;
        };
        let mut event: Option<Arc<str>> = None;
        let mut build = Some(build);
        for s in subs.iter() {
            if s.tx.is_closed() {
                continue;
            }
            if s.tx.capacity() == 0 {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let e = event.get_or_insert_with(|| {
                let value = build.take().map(|b| b()).unwrap_or(Value::Null);
                Arc::from(value.to_string())
            });
            if s.tx.try_send(Arc::clone(e)).is_err() {
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets consoles that went away (the sampler calls it once a second).
    pub(crate) fn prune(&self) {
        if !self.active() {
            return;
        }
        if let Ok(mut subs) = self.subscribers.write() {
            self.retire(&mut subs, |s| !s.tx.is_closed());
        }
    }

    /// A message handled: latency and errors for the charts (always), and the frame
    /// for the consoles. `payload` is the frame's text when [`wants`](Self::wants) said
    /// so before dispatch. (Its reply is reported by [`sent`](Self::sent) when written.)
    pub(crate) fn message(
        &self,
        live: &Live,
        route: &str,
        latency: Duration,
        outcome: &Outcome,
        payload: Option<&str>,
    ) {
        let error = outcome.error.as_ref();
        self.metrics.record(route, latency, error.is_some());
        let Some(payload) = payload else {
            return;
        };
        let t = crate::now();
        let (kind, code) = match (error, &outcome.body) {
            (Some(e), _) => ("error", Some(e.code().to_owned())),
            (None, Some(_)) => ("reply", None),
            (None, None) => ("none", None),
        };
        self.publish(|| {
            json!({
                "type": "frame", "dir": "in", "t": t, "conn": live.id, "route": route,
                "size": payload.len(),
                "latencyUs": u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                "outcome": kind, "code": code, "status": outcome.status,
                "payload": preview(payload),
            })
        });
    }

    /// Frames about to be written to a connection: `kind` is `reply` (a route response)
    /// or `push` (`@connections` posts, sends from handlers). Counts them per
    /// connection; reports them to the consoles.
    #[inline]
    pub(crate) fn sent(&self, live: &Live, kind: &'static str, frames: &[Frame]) {
        let n = u64::try_from(frames.len()).unwrap_or(u64::MAX);
        live.frames_out.fetch_add(n, Ordering::Relaxed);
        if !self.active() {
            return;
        }
        let t = crate::now();
        for frame in frames {
            self.publish(|| {
                json!({
                    "type": "frame", "dir": "out", "t": t, "conn": live.id,
                    "route": Value::Null, "size": frame.len(), "outcome": kind,
                    "payload": preview_frame(frame),
                })
            });
        }
    }

    /// Ends every console's stream (the gateway is shutting down).
    pub(crate) fn close(&self) {
        if let Ok(mut subs) = self.subscribers.write() {
            self.retire(&mut subs, |_| false);
        }
    }

    /// A connection opened; `query` is the upgrade's query string (tokens redacted here).
    pub(crate) fn connected(&self, live: &Live, query: &str) {
        self.publish(|| {
            json!({
                "type": "connect", "t": live.connected_at, "conn": live.id,
                "user": live.identity.username(), "sourceIp": live.source_ip,
                "userAgent": live.user_agent, "query": redact_query(query),
            })
        });
    }

    /// A connection closed with `code`.
    pub(crate) fn closed(&self, live: &Live, code: u16, reason: &str) {
        self.publish(|| {
            json!({
                "type": "close", "t": crate::now(), "conn": live.id,
                "code": code, "reason": reason,
            })
        });
    }
}

/// A payload for the console: tokens redacted, cut at [`PAYLOAD_PREVIEW`] bytes.
pub(crate) fn preview(text: &str) -> String {
    let mut end = text.len().min(PAYLOAD_PREVIEW);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = redact_tokens(&text[..end]);
    if end < text.len() {
        out.push_str(" …(cut)");
    }
    out
}

fn preview_frame(frame: &Frame) -> String {
    match frame.as_text() {
        Some(text) => preview(text),
        None => format!("({} bytes of binary)", frame.len()),
    }
}

/// Replaces every JWT-shaped word (`eyJ…`, three base64url segments) with `«token»`:
/// tokens never reach the console.
pub(crate) fn redact_tokens(text: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let len = tail.find(|c| !is_token_char(c)).unwrap_or(tail.len());
        let word = &tail[..len];
        if switchboard_core::auth::looks_like_jwt(word) {
            out.push_str("«token»");
        } else {
            out.push_str(word);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// A query string with the values of `token` (and anything token-shaped) redacted.
pub(crate) fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("token") => format!("{k}=«token»"),
            _ => redact_tokens(pair),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

    #[test]
    fn tokens_are_redacted() {
        let text = format!(r#"{{"action":"x","token":"{JWT}","note":"eyJ is fine"}}"#);
        let out = redact_tokens(&text);
        assert!(!out.contains(JWT), "{out}");
        assert!(
            out.contains("«token»") && out.contains("eyJ is fine"),
            "{out}"
        );
        assert_eq!(
            redact_query(&format!("user=a&token={JWT}&x={JWT}")),
            "user=a&token=«token»&x=«token»"
        );
        assert_eq!(redact_query("token=abc"), "token=«token»");
    }

    #[test]
    fn previews_are_cut_on_a_char_boundary() {
        let long = "é".repeat(PAYLOAD_PREVIEW);
        let p = preview(&long);
        assert!(
            p.ends_with("…(cut)") && p.len() <= PAYLOAD_PREVIEW + 10,
            "{}",
            p.len()
        );
        assert_eq!(preview("short"), "short");
    }

    #[tokio::test]
    async fn a_console_that_stops_reading_is_bounded_and_its_drops_counted() {
        let feed = Feed::new(["echo"]);
        assert!(!feed.active());
        let built = AtomicUsize::new(0);
        feed.publish(|| {
            built.fetch_add(1, Ordering::Relaxed);
            json!({})
        });
        assert_eq!(
            built.load(Ordering::Relaxed),
            0,
            "no console: nothing built"
        );

        let sub = feed.subscribe().unwrap_or_else(|| panic!("a subscription"));
        let n = SUBSCRIBER_BUFFER * 20;
        for i in 0..n {
            feed.publish(|| {
                built.fetch_add(1, Ordering::Relaxed);
                json!({ "i": i })
            });
        }
        assert_eq!(
            sub.rx.len(),
            SUBSCRIBER_BUFFER,
            "the queue stays at its bound"
        );
        assert_eq!(
            built.load(Ordering::Relaxed),
            SUBSCRIBER_BUFFER,
            "full: not built"
        );
        let dropped = (n - SUBSCRIBER_BUFFER) as u64;
        assert_eq!(sub.dropped.load(Ordering::Relaxed), dropped);
        assert_eq!(feed.dropped(), dropped);
        assert!(!feed.wants());

        drop(sub);
        feed.publish(|| json!({}));
        feed.prune();
        assert!(!feed.active(), "a closed console is forgotten");
        assert_eq!(feed.dropped(), dropped, "its drops are still counted");
    }

    #[test]
    fn subscribers_are_capped() {
        let feed = Feed::new([]);
        let subs: Vec<_> = (0..MAX_SUBSCRIBERS)
            .filter_map(|_| feed.subscribe())
            .collect();
        assert_eq!(subs.len(), MAX_SUBSCRIBERS);
        assert!(feed.subscribe().is_none());
        drop(subs);
        assert!(feed.subscribe().is_some(), "closed ones make room");
    }
}
