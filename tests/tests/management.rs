//! The `@connections` management API by hand, unsigned with SigV4 off, for what the SDK
//! cannot express (the stage-less path, a wrong stage). Through the real
//! `aws-sdk-apigatewaymanagement` client (POST, GET, DELETE, 410, 413, `$disconnect` after
//! DELETE) it is checked by the parity suite (`parity/src/checks/management.rs`,
//! `parity/tests/local.rs`), the same checks a deployed stage gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchboard::local::LocalConfig;
use switchboard_tests::*;

#[tokio::test]
async fn plain_http_paths() {
    // Unsigned requests by hand: SigV4 off, as `--no-sigv4` allows on loopback (signed and
    // refused requests: local/tests/sigv4.rs).
    let gw = start_with(LocalConfig {
        sigv4: None,
        ..config()
    })
    .await;
    let addr = gw.local_addr();
    let mut alice = connect(&gw, "alice").await;
    let id = whoami_id(&mut alice).await;
    let encoded = encode_segment(&id);
    assert!(encoded.ends_with("%3D"), "{encoded}");

    // With the stage, percent-encoded id.
    let r = http(addr, "POST", &format!("/ws/@connections/{encoded}"), b"one").await;
    assert_eq!(r.status, 200);
    assert_eq!(recv_text(&mut alice).await, "one");

    // Without the stage.
    let r = http(addr, "POST", &format!("/@connections/{encoded}"), b"two").await;
    assert_eq!(r.status, 200);
    assert_eq!(recv_text(&mut alice).await, "two");
    let r = http(addr, "GET", &format!("/@connections/{encoded}"), b"").await;
    assert_eq!(r.status, 200);
    let info = r.json();
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(info["identity"]["userAgent"], USER_AGENT);
    assert!(
        info["connectedAt"].as_str().unwrap().ends_with('Z'),
        "{info}"
    );
    assert!(info["lastActiveAt"].is_string(), "{info}");

    // A wrong stage: 403 ForbiddenException, nothing delivered.
    let r = http(
        addr,
        "POST",
        &format!("/nope/@connections/{encoded}"),
        b"three",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-amzn-errortype"), Some("ForbiddenException"));
    expect_silence(&mut alice, Duration::from_millis(100)).await;

    // Gone and too large, as the SDK sees them.
    let r = http(addr, "POST", "/ws/@connections/R0oXAdfD0kwCH6w%3D", b"x").await;
    assert_eq!(r.status, 410);
    assert_eq!(r.header("x-amzn-errortype"), Some("GoneException"));
    let big = vec![b'a'; 129 * 1024];
    let r = http(addr, "POST", &format!("/ws/@connections/{encoded}"), &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("PayloadTooLargeException")
    );

    // DELETE by hand: 204, then the socket closes with 1000.
    let r = http(addr, "DELETE", &format!("/ws/@connections/{encoded}"), b"").await;
    assert_eq!(r.status, 204);
    expect_close(&mut alice, 1000).await;
    shutdown(gw).await;
}
