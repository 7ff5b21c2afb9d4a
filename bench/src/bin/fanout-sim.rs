//! `fanout-sim`: the sharded fan-out (issue 17) against an account rate limit, in one
//! process. A room of `N` members (embedded store), a handler that sends one frame to
//! it, the real sharding, the embedded fan-out queue, `C` consumer tasks (the `fanout`
//! function's concurrency) and the real `@connections` client (SigV4, HTTP) posting
//! to a fake `@connections` endpoint on 127.0.0.1 that takes `L` ms per call and
//! answers 429 `LimitExceededException` above `R` calls per second (a token bucket
//! holding 100 ms of calls, full at the start as an account at rest is). `--broadcast 1`
//! sends to every connection (the parallel scan segments) instead of a room.
//!
//! ```text
//! cargo run -p switchboard-bench --release --bin fanout-sim -- \
//!     --recipients 50000 --latency-ms 25 --rate 5000 [--threshold 1000 --concurrency 8 \
//!     --shard-size 500 --inflight 64 --budget 5000 --broadcast 1]
//! ```
//!
//! Prints one JSON line: `recipients`, `delivered` (distinct recipients posted),
//! `duplicates` (posts beyond the first per recipient), `throttled_429`,
//! `handler_return_ms`, `time_to_all_s`, `bound_s` (`N / R`: the account's physical
//! limit), `ratio` (`time_to_all_s / bound_s`) and `dead_lettered_shards`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State as AxumState;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard::aws::AwsSettings;
use switchboard::aws::connections::ManagementApi;
use switchboard::backend::memory::MemoryStore;
use switchboard::backend::{ConnectionStore, Member};
use switchboard::fanout::{QUEUE, Sharding, consume_batch};
use switchboard::handler::{BoxedHandler, erase};
use switchboard::prelude::*;
use switchboard::queue::memory::MemoryQueue;
use switchboard::queue::{Queue, QueueSettings};
use switchboard::registry::{RouteKind, RouteOptions, SourceLocation};
use switchboard::testing::events::websocket;

const ROOM: &str = "live";

struct Args {
    recipients: usize,
    latency_ms: u64,
    rate: u32,
    budget: u32,
    threshold: usize,
    concurrency: usize,
    shard_size: usize,
    inflight: usize,
    broadcast: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        recipients: 1000,
        latency_ms: 25,
        rate: 5000,
        budget: 0,
        threshold: 1000,
        concurrency: 8,
        shard_size: 500,
        inflight: 64,
        broadcast: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        let n_usize = usize::try_from(n).map_err(|_| format!("{flag}: too large"))?;
        match flag.as_str() {
            "--recipients" => a.recipients = n_usize,
            "--latency-ms" => a.latency_ms = n,
            "--rate" => a.rate = u32::try_from(n).map_err(|_| "--rate: too large")?,
            "--budget" => a.budget = u32::try_from(n).map_err(|_| "--budget: too large")?,
            "--threshold" => a.threshold = n_usize,
            "--concurrency" => a.concurrency = n_usize.max(1),
            "--shard-size" => a.shard_size = n_usize.max(1),
            "--inflight" => a.inflight = n_usize.max(1),
            "--broadcast" => a.broadcast = n != 0,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.budget == 0 {
        a.budget = a.rate;
    }
    Ok(a)
}

/// The fake `@connections` endpoint: the account's token bucket, per-call latency,
/// and what every recipient got.
struct Fake {
    latency: Duration,
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
    posts: Mutex<HashMap<String, u32>>,
    throttled: AtomicU64,
    delivered: AtomicU64,
}

impl Fake {
    fn admit(&self) -> bool {
        let mut b = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let cap = (self.rate / 10.0).max(1.0);
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.rate).min(cap);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn fake_handler(AxumState(fake): AxumState<Arc<Fake>>, method: Method, uri: Uri) -> Response {
    if method != Method::POST {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !fake.admit() {
        fake.throttled.fetch_add(1, Ordering::Relaxed);
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"message":"Rate exceeded"}"#,
        )
            .into_response();
        r.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("LimitExceededException"),
        );
        return r;
    }
    tokio::time::sleep(fake.latency).await;
    let id = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let first = {
        let mut posts = fake
            .posts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = posts.entry(id).or_default();
        *n += 1;
        *n == 1
    };
    if first {
        fake.delivered.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK.into_response()
}

/// Whether the handler broadcasts (every connection) instead of sending to [`ROOM`].
static BROADCAST: AtomicBool = AtomicBool::new(false);

async fn blast(ctx: Ctx) -> Result<Json<Delivery>, WsError> {
    let frame = json!({"action": "score", "home": 2, "away": 1});
    let target = if BROADCAST.load(Ordering::Relaxed) {
        ctx.broadcast()
    } else {
        ctx.room(ROOM)
    };
    Ok(Json(target.send(&frame).await?))
}

fn blast_handler() -> BoxedHandler {
    erase(blast)
}

fn blast_def() -> switchboard::RouteDef {
    switchboard::RouteDef {
        key: "blast",
        kind: RouteKind::Custom,
        function: "blast",
        module: "fanout_sim",
        location: SourceLocation {
            file: file!(),
            line: line!(),
        },
        options: RouteOptions::default(),
        doc: "",
        handler: blast_handler,
    }
}

async fn fill(store: &MemoryStore, n: usize, broadcast: bool) -> Result<(), String> {
    if broadcast {
        return connect(store, n).await;
    }
    for i in 0..n {
        let member = Member {
            connection_id: format!("c{i:07}="),
            username: format!("u{i}"),
        };
        store
            .join_room(ROOM, &member)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `n` open connections (for a broadcast).
async fn connect(store: &MemoryStore, n: usize) -> Result<(), String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as i64;
    for i in 0..n {
        let id = format!("c{i:07}=");
        let record = switchboard::backend::ConnectionRecord {
            session_key: format!("{now_ms}#{id}"),
            connection_id: id,
            username: format!("u{i}"),
            connected_at: now_ms,
            expires: now_ms / 1000 + 3600,
            source_ip: None,
            user_agent: None,
            claims: serde_json::Map::new(),
        };
        store
            .put_connection(&record)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let fake = Arc::new(Fake {
        latency: Duration::from_millis(args.latency_ms),
        rate: f64::from(args.rate.max(1)),
        // An account at rest holds its whole burst (API Gateway's bucket is full
        // before a fan-out starts); an empty start threw 429s at the first posts.
        bucket: Mutex::new((
            (f64::from(args.rate.max(1)) / 10.0).max(1.0),
            Instant::now(),
        )),
        posts: Mutex::new(HashMap::with_capacity(args.recipients)),
        throttled: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let router = axum::Router::new()
        .fallback(fake_handler)
        .with_state(Arc::clone(&fake));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let url = format!("http://{addr}");
    let api = Arc::new(ManagementApi::new(
        &AwsSettings::local(url.clone()),
        format!("{url}/ws"),
    ));
    let store = MemoryStore::new();
    BROADCAST.store(args.broadcast, Ordering::Relaxed);
    fill(&store, args.recipients, args.broadcast).await?;
    let queue = Arc::new(MemoryQueue::new().with_queue(QUEUE, QueueSettings::standard()));
    let sharding = Sharding::new(queue.clone())
        .threshold(args.threshold)
        .shard_size(args.shard_size)
        .rate(args.budget);
    let app = App::new()
        .with_routes([blast_def()])
        .store(store)
        .fanout_concurrency(args.inflight)
        .sharding(sharding);
    let dispatcher = app.dispatcher(api).map_err(|e| e.to_string())?;
    let services = dispatcher.services().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (services, stop) = (services.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = consume_batch(&services, Duration::from_millis(200)).await {
                        eprintln!("consumer: {e}");
                    }
                }
            })
        })
        .collect();

    let event = websocket::message("blast", websocket::CONNECTION_ID)
        .body(r#"{"action":"blast"}"#)
        .build();
    let event = serde_json::from_value(event).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let outcome = dispatcher.dispatch(event).await;
    let handler_return_ms = started.elapsed().as_secs_f64() * 1000.0;
    let body = outcome
        .body
        .as_ref()
        .and_then(|b| b.as_text())
        .unwrap_or("");
    if body.contains("\"error\"") {
        return Err(format!("the send failed: {body}"));
    }
    let n = args.recipients as u64;
    let bound_s = args.recipients as f64 / f64::from(args.rate.max(1));
    let give_up = Duration::from_secs_f64((bound_s * 4.0).max(60.0));
    while fake.delivered.load(Ordering::Relaxed) < n && started.elapsed() < give_up {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let time_to_all_s = started.elapsed().as_secs_f64();
    // Let anything still in flight land, so duplicates are counted.
    tokio::time::sleep(Duration::from_millis(args.latency_ms * 2 + 200)).await;
    stop.store(true, Ordering::Relaxed);
    for c in consumers {
        let _ = c.await;
    }
    let (delivered, duplicates) = {
        let posts = fake.posts.lock().map_err(|e| e.to_string())?;
        let duplicates: u64 = posts.values().map(|c| u64::from(c.saturating_sub(1))).sum();
        (posts.len(), duplicates)
    };
    let dead_shards = queue
        .stats(QUEUE)
        .await
        .map(|s| s.dead_letters)
        .unwrap_or_default();
    let line = json!({
        "recipients": args.recipients,
        "delivered": delivered,
        "duplicates": duplicates,
        "throttled_429": fake.throttled.load(Ordering::Relaxed),
        "handler_return_ms": (handler_return_ms * 10.0).round() / 10.0,
        "time_to_all_s": (time_to_all_s * 100.0).round() / 100.0,
        "bound_s": (bound_s * 100.0).round() / 100.0,
        "ratio": ((time_to_all_s / bound_s.max(f64::MIN_POSITIVE)) * 100.0).round() / 100.0,
        "dead_lettered_shards": dead_shards,
        "latency_ms": args.latency_ms,
        "rate": args.rate,
        "budget": args.budget,
        "threshold": args.threshold,
        "concurrency": args.concurrency,
        "shard_size": args.shard_size,
        "inflight": args.inflight,
        "broadcast": args.broadcast,
    });
    println!("{line}");
    Ok(())
}
