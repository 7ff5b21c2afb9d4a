//! AWS calls per operation, counted: the real `chat-app` binary in Lambda mode (one warm
//! process per role, as in AWS) with DynamoDB and SQS (moto) and `@connections` (the
//! local gateway) each behind a [`RecordingProxy`](switchboard::testing::proxy). Every
//! count is exact: a change that adds a call fails here, and the README's table is this
//! test's output.
//!
//! Needs a moto server: `.ci/run` starts one; by hand: `eval "$(bash scripts/moto.sh start)"`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Aws, WAIT, function, issuer_gateway, local_token, sorted, times};
use switchboard::backend::ConnectionStore;
use switchboard::queue::Queue;
use switchboard::testing::events;
use switchboard::testing::lambda::{Answer, FunctionEnv};
use switchboard::testing::proxy::{Outcome, RecordingProxy};

/// Room and broadcast size.
const N: usize = 3;

/// What one operation cost, per service.
#[derive(Debug, PartialEq)]
struct Cost {
    dynamodb: Vec<String>,
    sqs: Vec<String>,
    connections: Vec<String>,
}

fn cost(aws: &Aws) -> Cost {
    for proxy in [&aws.ddb, &aws.sqs, &aws.mgmt] {
        for call in proxy.calls() {
            assert!(
                matches!(call.outcome, Outcome::Answered(200..=299)),
                "{call:?}"
            );
        }
    }
    let c = Cost {
        dynamodb: sorted(aws.ddb.operations()),
        sqs: sorted(aws.sqs.operations()),
        connections: sorted(aws.mgmt.operations()),
    };
    aws.reset_calls();
    c
}

fn ops(list: &[(&str, usize)]) -> Vec<String> {
    sorted(list.iter().flat_map(|(op, n)| times(op, *n)).collect())
}

fn print(name: &str, c: &Cost) {
    let fmt = |v: &[String]| {
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < v.len() {
            let n = v[i..].iter().take_while(|o| **o == v[i]).count();
            out.push(format!("{n} {}", v[i]));
            i += n;
        }
        if out.is_empty() {
            "-".to_owned()
        } else {
            out.join(" + ")
        }
    };
    println!(
        "| {name} | {} | {} | {} |",
        fmt(&c.dynamodb),
        fmt(&c.sqs),
        fmt(&c.connections)
    );
}

#[tokio::test]
async fn aws_calls_per_operation() {
    let Some(aws) = Aws::start("aws_calls_per_operation").await else {
        return;
    };
    let connect = aws.function("ws:$connect").await;
    let mut clients = aws.clients("u", N, &connect).await;
    aws.reset_calls();
    println!("| operation (N = {N}) | DynamoDB | SQS | @connections |");
    println!("|---|---|---|---|");

    // $connect: one conditional PutItem.
    let extra = aws.clients("x", 1, &connect).await;
    let c = cost(&aws);
    print("`$connect`", &c);
    assert_eq!(c.dynamodb, ops(&[("PutItem", 1)]));
    assert!(c.sqs.is_empty() && c.connections.is_empty(), "{c:?}");

    // A reply (a route returning a value): no AWS call at all.
    let echo = aws.function("ws:echo").await;
    let reply = echo
        .reply(&clients[0].event("MESSAGE", "echo", Some(r#"{"action":"echo","data":7}"#)))
        .await;
    assert_eq!(reply, json!({"action": "echo", "data": 7}));
    let c = cost(&aws);
    print("reply (`echo`)", &c);
    assert_eq!(c, no_calls());
    let ping = aws.function("ws:ping").await;
    assert_eq!(
        ping.reply(&clients[0].event("MESSAGE", "ping", Some("{}")))
            .await["action"],
        "pong"
    );
    assert_eq!(cost(&aws), no_calls());

    // whoami: the rooms of the caller, one Query on the rooms GSI.
    let whoami = aws.function("ws:whoami").await;
    let me = whoami
        .reply(&clients[0].event("MESSAGE", "whoami", Some("{}")))
        .await;
    assert_eq!(me["connectionId"], clients[0].id.as_str());
    let c = cost(&aws);
    print("reply reading the store (`whoami`)", &c);
    assert_eq!(c.dynamodb, ops(&[("Query", 1)]));

    // join: PutItem (membership), Query (members, for the presence frame), one post per
    // member, Query (members, for the reply: the app asks twice).
    let join = aws.function("ws:join").await;
    for (i, client) in clients.iter().enumerate() {
        let reply = join
            .reply(&client.event("MESSAGE", "join", Some(r#"{"action":"join","room":"r"}"#)))
            .await;
        assert_eq!(reply["members"].as_array().unwrap().len(), i + 1, "{reply}");
        let c = cost(&aws);
        if i + 1 == N {
            print(&format!("`join` (room of {N})"), &c);
        }
        // The chat keeps room history: the presence frame also allocates its seq
        // (UpdateItem on the room's counter) and is stored (PutItem).
        assert_eq!(
            c.dynamodb,
            ops(&[("PutItem", 2), ("Query", 2), ("UpdateItem", 1)])
        );
        assert_eq!(c.connections, ops(&[("PostToConnection", i + 1)]));
    }
    let last = clients[N - 1].id.clone();
    for client in &mut clients {
        // The presence frames of everyone who joined after this client, itself included.
        loop {
            let v = client.recv().await;
            assert_eq!(v["action"], "presence");
            if v["connectionId"] == last.as_str() {
                break;
            }
        }
    }

    // A room send of N members: the app's membership check (Query on the rooms GSI),
    // the seq (UpdateItem) and the stored frame (PutItem), the members (Query), N posts.
    let send = aws.function("ws:sendMessage").await;
    let body = r#"{"action":"sendMessage","room":"r","text":"hi"}"#;
    let reply = send
        .reply(&clients[0].event("MESSAGE", "sendMessage", Some(body)))
        .await;
    assert_eq!(reply, Value::Null, "sendMessage replies nothing");
    let c = cost(&aws);
    print(&format!("room send (`sendMessage`, room of {N})"), &c);
    assert_eq!(
        c.dynamodb,
        ops(&[("Query", 2), ("UpdateItem", 1), ("PutItem", 1)])
    );
    assert_eq!(c.connections, ops(&[("PostToConnection", N)]));
    assert!(c.sqs.is_empty());
    let mut hi = Value::Null;
    for client in &mut clients {
        hi = client.recv().await;
        assert_eq!(hi["text"], "hi");
    }

    // Broadcast to every connection (N + the extra one): one Scan, one post each.
    let broadcast = aws.function("ws:broadcast").await;
    broadcast
        .reply(&clients[0].event(
            "MESSAGE",
            "broadcast",
            Some(r#"{"action":"broadcast","data":"all"}"#),
        ))
        .await;
    let c = cost(&aws);
    print(&format!("broadcast to {} connections", N + 1), &c);
    assert_eq!(c.dynamodb, ops(&[("Scan", 1)]));
    assert_eq!(c.connections, ops(&[("PostToConnection", N + 1)]));
    for client in &mut clients {
        assert_eq!(client.recv().await["data"], "all");
    }
    drop(extra);

    // A forward to a queue: one SendMessage (the URL is configured: no GetQueueUrl).
    let place = aws.function("ws:placeOrder").await;
    let reply = place
        .reply(&clients[0].event(
            "MESSAGE",
            "placeOrder",
            Some(r#"{"action":"placeOrder","item":"tea","qty":1,"ref":"c-1"}"#),
        ))
        .await;
    assert_eq!(reply["action"], "orderAccepted", "{reply}");
    let c = cost(&aws);
    print("forward to a queue (`placeOrder`)", &c);
    assert_eq!(c.sqs, ops(&[("SendMessage", 1)]));
    assert!(c.dynamodb.is_empty() && c.connections.is_empty(), "{c:?}");
    let queued = aws
        .queue
        .receive("orders", 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);

    // $disconnect of a member of one room of N: the app's #[ws_disconnect] (rooms of the
    // connection: Query; members: Query; N - 1 posts), then the bookkeeping (DeleteItem
    // by the key rebuilt from the event, rooms GSI Query + BatchWriteItem).
    let disconnect = aws.function("ws:$disconnect").await;
    let answer = disconnect
        .invoke(&clients[N - 1].event("DISCONNECT", "$disconnect", None))
        .await;
    assert_eq!(answer.body()["statusCode"], 200, "{answer:?}");
    let c = cost(&aws);
    print(&format!("`$disconnect` (in one room of {N})"), &c);
    assert_eq!(
        c.dynamodb,
        ops(&[
            ("Query", 3),
            ("DeleteItem", 1),
            ("BatchWriteItem", 1),
            ("UpdateItem", 1),
            ("PutItem", 1)
        ])
    );
    assert_eq!(c.connections, ops(&[("PostToConnection", N - 1)]));
    assert!(
        aws.store
            .get_connection(&clients[N - 1].id)
            .await
            .unwrap()
            .is_none()
    );

    // resume of one room by a new connection that missed 2 frames ("hi" and the
    // presence frame of the disconnect above): the join (PutItem), the counter
    // (UpdateItem), the frames (Query), one post per frame; the answer is the route
    // response.
    let late = &mut aws.clients("w", 1, &connect).await[0];
    aws.reset_calls();
    let resume = aws.function("ws:resume").await;
    let since = hi["seq"].as_u64().unwrap() - 1;
    let body = json!({"action": "resume", "id": "q",
                      "rooms": [{"room": "r", "since": since, "epoch": hi["epoch"]}]})
    .to_string();
    let resumed = resume
        .reply(&late.event("MESSAGE", "resume", Some(&body)))
        .await;
    assert_eq!(resumed["id"], "q");
    assert_eq!(resumed["rooms"][0]["recovered"], true, "{resumed}");
    assert_eq!(resumed["rooms"][0]["seq"].as_u64(), Some(since + 2));
    let c = cost(&aws);
    print("`resume` (1 room, 2 frames missed)", &c);
    assert_eq!(
        c.dynamodb,
        ops(&[("PutItem", 1), ("UpdateItem", 1), ("Query", 1)])
    );
    assert_eq!(c.connections, ops(&[("PostToConnection", 2)]));
    assert_eq!(late.recv().await, hi, "replayed exactly as delivered");
    assert_eq!(late.recv().await["event"], "leave");

    // $disconnect of a connection in no room: Query (app) + DeleteItem + Query (rooms).
    let lonely = &aws.clients("y", 1, &connect).await[0];
    aws.reset_calls();
    disconnect
        .invoke(&lonely.event("DISCONNECT", "$disconnect", None))
        .await;
    let c = cost(&aws);
    print("`$disconnect` (in no room)", &c);
    assert_eq!(c.dynamodb, ops(&[("Query", 2), ("DeleteItem", 1)]));
    assert!(c.connections.is_empty());
    assert!(
        aws.store
            .get_connection(&lonely.id)
            .await
            .unwrap()
            .is_none()
    );

    // A $disconnect whose event does not rebuild the record's key (here another user
    // name): the DeleteItem finds nothing and the lookup by connection id follows.
    let other = &aws.clients("z", 1, &connect).await[0];
    aws.reset_calls();
    let mut event = other.event("DISCONNECT", "$disconnect", None);
    event["requestContext"]["authorizer"]["username"] = json!("someone-else");
    disconnect.invoke(&event).await;
    let c = cost(&aws);
    assert_eq!(c.dynamodb, ops(&[("Query", 3), ("DeleteItem", 2)]));
    assert!(aws.store.get_connection(&other.id).await.unwrap().is_none());

    aws.stack.gw.shutdown().await;
}

fn no_calls() -> Cost {
    Cost {
        dynamodb: Vec::new(),
        sqs: Vec::new(),
        connections: Vec::new(),
    }
}

#[tokio::test]
async fn authorizer_fetches_the_jwks_once_per_process() {
    // The JWT authorizer's only network call is the JWKS fetch (Cognito's
    // `/.well-known/jwks.json`), once per warm process; no AWS API call at all.
    let (gw, dir) = issuer_gateway("switchboard-calls").await;
    let jwks = RecordingProxy::start(&gw.http_url()).await.unwrap();
    let issuer = format!("{}/local", gw.http_url());
    let token = local_token(gw.local_addr(), "alice").await;
    let authorizer = function(
        "ws:authorizer",
        &FunctionEnv::new()
            .jwt_issuer(issuer)
            .jwt_audience("switchboard-local")
            .jwks_url(format!(
                "{}{}",
                jwks.url(),
                switchboard::local::issuer::JWKS_PATH
            )),
    )
    .await
    .with_timeout(WAIT);
    let event = events::authorizer::request().token(&token).build();
    for round in 0..3 {
        let answer = authorizer.invoke(&event).await;
        let Answer::Response(body) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
        let expected = if round == 0 { 1 } else { 0 };
        let calls = jwks.take_calls();
        assert_eq!(calls.len(), expected, "round {round}: {calls:?}");
        if round == 0 {
            assert_eq!(
                calls[0].operation,
                format!("GET {}", switchboard::local::issuer::JWKS_PATH)
            );
            println!(
                "| authorizer (`ws:authorizer`, JWT) | - | - | - (1 JWKS GET per cold start) |"
            );
        }
    }
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
