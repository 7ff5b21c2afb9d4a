//! `@connections` through the AWS SDK (SigV4): POST, GET, DELETE, 410, 413. Moved from
//! `tests/tests/management.rs` (`post_get_delete_through_the_sdk`,
//! `unknown_connection_is_gone`); its unsigned by-hand test stays there (SigV4 off is
//! local-only).

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_apigatewaymanagement::Client as Mgmt;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use serde_json::json;
use switchboard_core::names::limits::MAX_MESSAGE_BYTES;

use super::Probe;
use super::util::wait_record_gone;
use crate::client::Client;
use crate::run::Verdict;
use crate::target::{Target, USER_AGENT};

/// How far the target's clock may be from ours (0 on loopback).
fn skew(t: &Target) -> i64 {
    if t.is_loopback() { 0 } else { 30_000 }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs an SDK call within a step.
async fn sdk<T, E: std::fmt::Debug, R: std::fmt::Debug>(
    t: &Target,
    what: &str,
    call: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<Result<T, SdkError<E, R>>, String> {
    tokio::time::timeout(t.step(), call)
        .await
        .map_err(|_| format!("{what}: no answer within {:?}", t.step()))
}

/// The HTTP status and `x-amzn-errortype`-derived code of an SDK error.
fn status_and_code<E: aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_apigatewaymanagement::config::http::HttpResponse>,
) -> (Option<u16>, Option<String>) {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned);
    (status, code)
}

fn mgmt(t: &Target) -> Result<&Mgmt, Verdict> {
    t.management().map_err(Verdict::Skipped)
}

/// A connection and its id.
async fn open(t: &Target) -> Result<(Client, String), String> {
    let mut c = t.connect(&t.unique("alice")).await?;
    let id = c.whoami_id().await?;
    Ok((c, id))
}

pub(super) async fn post_get(t: &Target) -> Probe {
    let client = match mgmt(t) {
        Ok(c) => c,
        Err(v) => return Ok(v),
    };
    let before = now_ms() - skew(t);
    let (mut alice, id) = open(t).await?;
    for body in ["hello from the backend", r#"{"action":"notice","n":1}"#] {
        sdk(
            t,
            "post",
            client
                .post_to_connection()
                .connection_id(&id)
                .data(Blob::new(body))
                .send(),
        )
        .await?
        .map_err(|e| format!("post: {e:?}"))?;
        let got = alice.recv_text().await?;
        ensure!(got == body, "posted {body:?}, received {got:?}");
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pinged_at = now_ms() - skew(t);
    let pong = alice.request(json!({"action": "ping"}), "pong").await?;
    ensure!(pong["action"] == "pong", "{pong}");
    let info = sdk(t, "get", client.get_connection().connection_id(&id).send())
        .await?
        .map_err(|e| format!("get: {e:?}"))?;
    let connected_at = info.connected_at().and_then(|d| d.to_millis().ok());
    let last_active_at = info.last_active_at().and_then(|d| d.to_millis().ok());
    let (Some(connected_at), Some(last_active_at)) = (connected_at, last_active_at) else {
        return Err(format!("GET without connectedAt/lastActiveAt: {info:?}"));
    };
    let upper = now_ms() + skew(t);
    ensure!(
        (before..=upper).contains(&connected_at),
        "connectedAt {connected_at} not in [{before}, {upper}]"
    );
    ensure!(
        last_active_at >= pinged_at - 1 && last_active_at > connected_at,
        "lastActiveAt {last_active_at}, connectedAt {connected_at}, ping at {pinged_at}"
    );
    let identity = info.identity().ok_or("GET without identity")?;
    let ip = identity.source_ip().unwrap_or_default();
    if t.is_loopback() {
        ensure!(ip == "127.0.0.1", "sourceIp {ip}");
        ensure!(
            identity.user_agent() == Some(USER_AGENT),
            "userAgent {:?}",
            identity.user_agent()
        );
    } else {
        ensure!(ip.parse::<std::net::IpAddr>().is_ok(), "sourceIp {ip:?}");
    }
    alice.close().await;
    Ok(Verdict::Pass(
        "POST verbatim (text, JSON); GET times and identity".into(),
    ))
}

pub(super) async fn user_agent(t: &Target) -> Probe {
    let client = match mgmt(t) {
        Ok(c) => c,
        Err(v) => return Ok(v),
    };
    let (alice, id) = open(t).await?;
    let info = sdk(t, "get", client.get_connection().connection_id(&id).send())
        .await?
        .map_err(|e| format!("get: {e:?}"))?;
    alice.close().await;
    let ua = info
        .identity()
        .and_then(|i| i.user_agent())
        .unwrap_or_default()
        .to_owned();
    let value = if ua == USER_AGENT {
        super::local::GET_USER_AGENT.to_owned()
    } else {
        format!("other: {ua}")
    };
    Ok(Verdict::observed(
        value,
        format!("sent {USER_AGENT}, GET says {ua:?}"),
    ))
}

pub(super) async fn post_413(t: &Target) -> Probe {
    let client = match mgmt(t) {
        Ok(c) => c,
        Err(v) => return Ok(v),
    };
    let (mut alice, id) = open(t).await?;
    let limit = MAX_MESSAGE_BYTES;
    sdk(
        t,
        "post 128 KB",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(vec![b'a'; limit]))
            .send(),
    )
    .await?
    .map_err(|e| format!("post 128 KB: {e:?}"))?;
    let got = alice.recv_text().await?;
    ensure!(got.len() == limit, "128 KB posted, {} received", got.len());
    let err = match sdk(
        t,
        "post 129 KB",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(vec![b'a'; limit + 1024]))
            .send(),
    )
    .await?
    {
        Ok(_) => return Err("129 KB was accepted".into()),
        Err(e) => e,
    };
    let (status, code) = status_and_code(&err);
    ensure!(status == Some(413), "129 KB: status {status:?}");
    ensure!(
        err.into_service_error().is_payload_too_large_exception(),
        "129 KB: {code:?}, expected PayloadTooLargeException"
    );
    let pong = alice.request(json!({"action": "ping"}), "pong").await?;
    alice.close().await;
    ensure!(pong["action"] == "pong", "{pong}");
    Ok(Verdict::Pass("128 KB delivered; 129 KB 413".into()))
}

/// DELETE `id`, the close code the client saw, then the three 410s and the record gone.
async fn delete_and_watch(t: &Target, client: &Mgmt) -> Result<(u16, String), String> {
    let user = t.unique("alice");
    let mut alice = t.connect(&user).await?;
    let id = alice.whoami_id().await?;
    sdk(
        t,
        "delete",
        client.delete_connection().connection_id(&id).send(),
    )
    .await?
    .map_err(|e| format!("delete: {e:?}"))?;
    let (code, reason) = alice.close_code_within(t.step()).await?;
    wait_record_gone(t, &user, &id).await?;
    let post = sdk(
        t,
        "post after delete",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new("anyone?"))
            .send(),
    )
    .await?;
    match post {
        Ok(_) => return Err("POST after DELETE succeeded".into()),
        Err(e) => {
            let (status, code) = status_and_code(&e);
            ensure!(
                status == Some(410),
                "POST after DELETE: {status:?} {code:?}"
            );
            ensure!(
                e.into_service_error().is_gone_exception(),
                "POST after DELETE: {code:?}"
            );
        }
    }
    match sdk(
        t,
        "get after delete",
        client.get_connection().connection_id(&id).send(),
    )
    .await?
    {
        Ok(_) => return Err("GET after DELETE succeeded".into()),
        Err(e) => ensure!(
            e.into_service_error().is_gone_exception(),
            "GET after DELETE is not Gone"
        ),
    }
    match sdk(
        t,
        "delete after delete",
        client.delete_connection().connection_id(&id).send(),
    )
    .await?
    {
        Ok(_) => return Err("DELETE after DELETE succeeded".into()),
        Err(e) => ensure!(
            e.into_service_error().is_gone_exception(),
            "DELETE after DELETE is not Gone"
        ),
    }
    Ok((code, reason))
}

pub(super) async fn delete_410(t: &Target) -> Probe {
    let client = match mgmt(t) {
        Ok(c) => c,
        Err(v) => return Ok(v),
    };
    let (code, reason) = delete_and_watch(t, client).await?;
    if t.is_loopback() {
        ensure!(!reason.is_empty(), "close {code} without a reason");
    }
    Ok(Verdict::Pass(format!(
        "closed ({code} {reason:?}); 410 for POST, GET, DELETE"
    )))
}

pub(super) async fn delete_close_code(t: &Target) -> Probe {
    let client = match mgmt(t) {
        Ok(c) => c,
        Err(v) => return Ok(v),
    };
    let (alice, id) = open(t).await?;
    let mut alice = alice;
    sdk(
        t,
        "delete",
        client.delete_connection().connection_id(&id).send(),
    )
    .await?
    .map_err(|e| format!("delete: {e:?}"))?;
    let (code, reason) = alice.close_code_within(t.step()).await?;
    Ok(Verdict::observed(
        code.to_string(),
        format!("reason {reason:?}"),
    ))
}

pub(super) async fn unknown_410(t: &Target) -> Probe {
    let client = match mgmt(t) {
        Ok(c) => c,
        Err(v) => return Ok(v),
    };
    let post = sdk(
        t,
        "post to an unknown id",
        client
            .post_to_connection()
            .connection_id("R0oXAdfD0kwCH6w=")
            .data(Blob::new("x"))
            .send(),
    )
    .await?;
    match post {
        Ok(_) => Err("POST to an unknown id succeeded".into()),
        Err(e) => {
            let (status, code) = status_and_code(&e);
            ensure!(status == Some(410), "status {status:?} {code:?}");
            ensure!(e.into_service_error().is_gone_exception(), "{code:?}");
            Ok(Verdict::Pass("410 GoneException".into()))
        }
    }
}
