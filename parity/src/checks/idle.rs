//! The idle timeout (API Gateway: 10 minutes; `--idle-wait-secs`). These checks wait for
//! it, so the runner starts them first and runs them beside the others.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Probe;
use crate::client::Event;
use crate::run::Verdict;
use crate::target::Target;

/// How long after the idle wait a close may still come.
fn margin(t: &Target) -> Duration {
    t.step() * 2
}

pub(super) async fn timeout_close(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("idle")).await?;
    let opened = Instant::now();
    match c.close_code_within(t.idle_wait() + margin(t)).await {
        Ok((code, reason)) => Ok(Verdict::observed(
            code.to_string(),
            format!("after {:.1} s: {reason:?}", opened.elapsed().as_secs_f64()),
        )),
        Err(e) if e.starts_with("still open") => {
            c.close().await;
            Ok(Verdict::observed("open", e))
        }
        Err(e) => Err(e),
    }
}

/// Sends `msg` every `every` for `total`, reading what comes back: `Ok(None)` when the
/// connection stayed open, `Ok(Some((code, after)))` when the target closed it.
async fn keep_sending(
    c: &mut crate::Client,
    msg: impl Fn() -> Message,
    every: Duration,
    total: Duration,
) -> Result<Option<(u16, Duration)>, String> {
    let start = Instant::now();
    let mut tick = tokio::time::interval(every);
    while start.elapsed() < total {
        tick.tick().await;
        if c.send(msg()).await.is_err() {
            // Closed under us: the close frame says how.
            return match c.close_code_within(c.step()).await {
                Ok((code, _)) => Ok(Some((code, start.elapsed()))),
                Err(e) => Err(e),
            };
        }
        // Drain what came (pongs), without waiting past the next tick.
        while let Some(event) = c.next_within(Duration::from_millis(10)).await {
            match event {
                Event::Close(code, _) => return Ok(Some((code, start.elapsed()))),
                Event::Ended(e) => return Err(e),
                _ => {}
            }
        }
    }
    Ok(None)
}

pub(super) async fn app_ping(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("busy")).await?;
    let total = t.idle_wait() + t.idle_wait() / 2;
    let ping = || Message::text(json!({"action": "ping"}).to_string());
    match keep_sending(&mut c, ping, t.idle_wait() / 4, total).await? {
        Some((code, after)) => Err(format!("closed with {code} after {after:?} despite pings")),
        None => {
            let pong = c.request(json!({"action": "ping"}), "pong").await?;
            c.close().await;
            ensure!(pong["action"] == "pong", "{pong}");
            Ok(Verdict::Pass(format!(
                "open after {total:?} of pings every {:?}",
                t.idle_wait() / 4
            )))
        }
    }
}

pub(super) async fn protocol_ping(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("pinger")).await?;
    let total = t.idle_wait() + margin(t);
    let ping = || Message::Ping(b"parity".to_vec().into());
    match keep_sending(&mut c, ping, t.idle_wait() / 4, total).await? {
        Some((code, after)) => Ok(Verdict::observed(
            "no",
            format!(
                "closed with {code} after {:.1} s of protocol pings",
                after.as_secs_f64()
            ),
        )),
        None => {
            c.close().await;
            Ok(Verdict::observed(
                "yes",
                format!("open after {total:?} of protocol pings"),
            ))
        }
    }
}
