//! Every name and limit more than one layer relies on, stated once: environment
//! variables, DynamoDB tables, indexes and attributes, queue naming rules, and API
//! Gateway's limits. The runtime, the local gateway, the deploy program and the tests
//! import these; none of them spells one out again.

/// The stand-in AWS credentials of local runs: what `AwsSettings::local` signs with (for
/// emulators and the local gateway), and the key the local gateway's `@connections` API
/// expects SigV4 signatures from unless `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` say
/// otherwise on `cargo run`. Not secrets: they open nothing outside this machine.
pub mod local_credentials {
    /// The access key id.
    pub const ACCESS_KEY_ID: &str = "AKIDLOCAL";
    /// The secret access key.
    pub const SECRET_ACCESS_KEY: &str = "local-secret";
    /// The region.
    pub const REGION: &str = "us-east-1";
}

/// Environment variables: what the deploy program sets on every function and what the
/// runtime reads.
pub mod env {
    /// The region (set by Lambda itself).
    pub const REGION: &str = "AWS_REGION";
    /// Access key (set by Lambda itself).
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// Secret key (set by Lambda itself).
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// Session token (set by Lambda itself).
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// The Lambda Runtime API's address (set by Lambda itself): its presence means
    /// "run as a function".
    pub const LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
    /// The function's role (`ws:<route>`, `ws:authorizer`, `http`, `queue:<name>`, ...).
    pub const HANDLER: &str = "_HANDLER";
    /// The connections table.
    pub const CONNECTIONS_TABLE: &str = "SWITCHBOARD_CONNECTIONS_TABLE";
    /// The rooms table.
    pub const ROOMS_TABLE: &str = "SWITCHBOARD_ROOMS_TABLE";
    /// The room history table (set on the functions that send to rooms or resume,
    /// when the app keeps history).
    pub const HISTORY_TABLE: &str = "SWITCHBOARD_HISTORY_TABLE";
    /// The `@connections` endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`);
    /// when unset, taken from each event's `domainName` and `stage`.
    pub const MANAGEMENT_ENDPOINT: &str = "SWITCHBOARD_MANAGEMENT_ENDPOINT";
    /// A DynamoDB endpoint override (moto, DynamoDB Local).
    pub const DYNAMODB_ENDPOINT: &str = "SWITCHBOARD_DYNAMODB_ENDPOINT";
    /// An SQS endpoint override (local emulators).
    pub const SQS_ENDPOINT: &str = "SWITCHBOARD_SQS_ENDPOINT";
    /// The Cognito user pool's issuer URL (`https://cognito-idp.{region}.amazonaws.com/{pool}`).
    pub const JWT_ISSUER: &str = "SWITCHBOARD_JWT_ISSUER";
    /// The JWKS URL (default: `{issuer}/.well-known/jwks.json`).
    pub const JWKS_URL: &str = "SWITCHBOARD_JWKS_URL";
    /// Seconds after which a known JWKS is refetched before its next use (default 600):
    /// the scheduled refresh that follows key rotations and revocations.
    pub const JWKS_MAX_AGE_SECS: &str = "SWITCHBOARD_JWKS_MAX_AGE_SECS";
    /// The app client id(s) tokens must be for (comma-separated).
    pub const JWT_AUDIENCE: &str = "SWITCHBOARD_JWT_AUDIENCE";
    /// Which tokens are accepted: `id`, `access` or `any`.
    pub const JWT_TOKEN_USE: &str = "SWITCHBOARD_JWT_TOKEN_USE";
    /// Groups a caller must be in (any of them; comma-separated).
    pub const JWT_GROUPS: &str = "SWITCHBOARD_JWT_GROUPS";
    /// Set to `true` to let the development authorizer (`?user=`) run in Lambda.
    pub const ALLOW_DEV_AUTH: &str = "SWITCHBOARD_ALLOW_DEV_AUTH";
    /// Set to `true` on a stage whose new users are confirmed without a code.
    pub const AUTO_CONFIRM_USERS: &str = "SWITCHBOARD_AUTO_CONFIRM_USERS";
    /// The origin secret CloudFront adds to every request it forwards to the APIs, in
    /// the [`ORIGIN`](super::headers::ORIGIN) header: set on the `$connect` authorizer
    /// (`ws:authorizer`) and the `http` function. When set, they refuse (403, with a
    /// constant-time comparison) any request whose header matches neither this nor
    /// [`ORIGIN_SECRET_PREVIOUS`]: a direct call to the `execute-api` endpoint, which
    /// skips CloudFront and its WAF. Unset: no check (local development).
    pub const ORIGIN_SECRET: &str = "SWITCHBOARD_ORIGIN_SECRET";
    /// The previous origin secret, accepted as well during a rotation (unset or empty
    /// otherwise); see the README's "Rotating the origin secret".
    pub const ORIGIN_SECRET_PREVIOUS: &str = "SWITCHBOARD_ORIGIN_SECRET_PREVIOUS";
    /// The service's name, `{app}-{stage}`: the value of the
    /// [`SERVICE`](super::metrics::dim::SERVICE) dimension of every metric the runtime
    /// emits. Set on every function.
    pub const SERVICE: &str = "SWITCHBOARD_SERVICE";
    /// The prefix of a queue's URL variable; see [`queue_url`].
    pub const QUEUE_URL_PREFIX: &str = "SWITCHBOARD_QUEUE_URL_";

    /// The variable that gives a function the URL of a queue: [`QUEUE_URL_PREFIX`] and
    /// the name upper-cased, `-` as `_` (`orders` → `SWITCHBOARD_QUEUE_URL_ORDERS`).
    pub fn queue_url(queue: &str) -> String {
        let mut var = String::from(QUEUE_URL_PREFIX);
        var.extend(queue.chars().map(|c| match c {
            '-' => '_',
            c => c.to_ascii_uppercase(),
        }));
        var
    }
}

/// HTTP headers more than one layer relies on (lowercase, as HTTP/2 sends them).
pub mod headers {
    /// The header CloudFront adds to every request to the APIs (a `customHeaders` entry
    /// of each API origin), carrying the origin secret
    /// ([`env::ORIGIN_SECRET`](super::env::ORIGIN_SECRET)). A viewer cannot set it:
    /// CloudFront replaces a viewer's header of the same name.
    pub const ORIGIN: &str = "x-switchboard-origin";
    /// The header an API key comes in (the WebSocket API's
    /// [`API_KEY_SELECTION_EXPRESSION`]).
    pub const API_KEY: &str = "x-api-key";
    /// The WebSocket API's `apiKeySelectionExpression`: the key is read from the
    /// [`API_KEY`] header of the upgrade request (`$connect`).
    pub const API_KEY_SELECTION_EXPRESSION: &str = "$request.header.x-api-key";
}

/// The CloudWatch metrics the runtime emits as Embedded Metric Format lines (one JSON
/// log line per invocation, no SDK call) and the deploy program's alarms and dashboard
/// read. Every metric is in [`NAMESPACE`](metrics::NAMESPACE), with the dimension set
/// named beside it; the [`dim::SERVICE`](metrics::dim::SERVICE) value is
/// [`env::SERVICE`] (`{app}-{stage}`).
pub mod metrics {
    /// The namespace of every Switchboard metric.
    pub const NAMESPACE: &str = "Switchboard";

    /// Dimension names.
    pub mod dim {
        /// `{app}-{stage}`: on every metric.
        pub const SERVICE: &str = "Service";
        /// The route key (`sendMessage`, `$connect`, ...).
        pub const ROUTE: &str = "Route";
        /// The logical queue name.
        pub const QUEUE: &str = "Queue";
    }

    /// Messages (or events) a route handled. Unit `Count`; dimensions `[Service, Route]`.
    pub const ROUTE_COUNT: &str = "RouteCount";
    /// Of those, the ones whose handler failed (an error frame or a 5xx). Unit `Count`;
    /// dimensions `[Service, Route]`.
    pub const ROUTE_ERRORS: &str = "RouteErrors";
    /// How long the handler took. Unit `Milliseconds`; dimensions `[Service, Route]`.
    pub const ROUTE_DURATION: &str = "RouteDuration";
    /// Connections a fan-out (room, user, broadcast) posted to. Unit `Count`; dimensions
    /// `[Service]`.
    pub const FANOUT_RECIPIENTS: &str = "FanoutRecipients";
    /// Of those, the ones `@connections` answered 410 Gone (stale records removed). Unit
    /// `Count`; dimensions `[Service]`.
    pub const FANOUT_GONE: &str = "FanoutGone";
    /// `$connect` upgrades the authorizer allowed. Unit `Count`; dimensions `[Service]`.
    pub const AUTHORIZER_ALLOW: &str = "AuthorizerAllow";
    /// `$connect` upgrades the authorizer denied (bad token, bad origin header). Unit
    /// `Count`; dimensions `[Service]`. The deny-ratio alarm reads this and
    /// [`AUTHORIZER_ALLOW`].
    pub const AUTHORIZER_DENY: &str = "AuthorizerDeny";
    /// Records of an SQS batch the consumer reported as failed. Unit `Count`;
    /// dimensions `[Service, Queue]`.
    pub const QUEUE_BATCH_FAILURES: &str = "QueueBatchFailures";
}

/// The DynamoDB tables of the connection store: names, keys, index and attributes.
pub mod table {
    /// Attribute names.
    pub mod attr {
        /// Connections: partition key (S).
        pub const USERNAME: &str = "username";
        /// Connections: sort key (S), `{connectedAt}#{connectionId}`.
        pub const SESSION_KEY: &str = "sessionKey";
        /// Connections: the GSI key (S). Rooms: sort key and GSI partition key (S).
        pub const CONNECTION_ID: &str = "connectionId";
        /// Connections: epoch milliseconds (N).
        pub const CONNECTED_AT: &str = "connectedAt";
        /// Both tables: the TTL attribute, epoch seconds (N).
        pub const EXPIRES: &str = "expires";
        /// Connections: the client's address (S, optional).
        pub const SOURCE_IP: &str = "sourceIp";
        /// Connections: the client's `User-Agent` (S, optional).
        pub const USER_AGENT: &str = "userAgent";
        /// Connections: the claims as a JSON object (S).
        pub const CLAIMS: &str = "claims";
        /// Rooms: partition key (S); sort key of the rooms GSI. History: partition
        /// key (S).
        pub const ROOM: &str = "room";
        /// History: sort key (N), the frame's `seq`; `0` is the room's counter item.
        pub const SEQ: &str = "seq";
        /// History: the stamped frame as delivered (S).
        pub const FRAME: &str = "frame";
        /// History: on the counter item, the room's latest `seq` (N).
        pub const LAST: &str = "last";
        /// History: on the counter item, the room's epoch (S).
        pub const EPOCH: &str = "epoch";
    }

    /// The history table's sort key value of a room's counter item (frames count
    /// from 1).
    pub const HISTORY_COUNTER_SEQ: u64 = 0;
    /// The suffix of the history table's name: `{app}-{stage}-websocket-history`.
    pub const HISTORY_TABLE_SUFFIX: &str = "-websocket-history";

    /// The deploy program's name of the room history table.
    pub fn history_table_for_app(app: &str, stage: &str) -> String {
        format!("{app}-{stage}{HISTORY_TABLE_SUFFIX}")
    }

    /// The suffix of both GSIs' names: `{table}-index-connection`.
    pub const CONNECTION_INDEX_SUFFIX: &str = "-index-connection";
    /// The suffix of the connections table's name in [`TableNames::for_app`].
    pub const CONNECTIONS_TABLE_SUFFIX: &str = "-websocket-connections";
    /// The suffix of the rooms table's name in [`TableNames::for_app`].
    pub const ROOMS_TABLE_SUFFIX: &str = "-websocket-rooms";

    /// The two tables' names.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TableNames {
        /// The connections table.
        pub connections: String,
        /// The rooms table.
        pub rooms: String,
    }

    impl TableNames {
        /// Explicit names.
        pub fn new(connections: impl Into<String>, rooms: impl Into<String>) -> Self {
            Self {
                connections: connections.into(),
                rooms: rooms.into(),
            }
        }

        /// The deploy program's names: `{app}-{stage}-websocket-connections` and
        /// `{app}-{stage}-websocket-rooms`.
        pub fn for_app(app: &str, stage: &str) -> Self {
            Self::new(
                format!("{app}-{stage}{CONNECTIONS_TABLE_SUFFIX}"),
                format!("{app}-{stage}{ROOMS_TABLE_SUFFIX}"),
            )
        }

        /// The connections table's GSI on `connectionId`.
        pub fn connections_index(&self) -> String {
            format!("{}{CONNECTION_INDEX_SUFFIX}", self.connections)
        }

        /// The rooms table's GSI on `connectionId` (sort key `room`).
        pub fn rooms_index(&self) -> String {
            format!("{}{CONNECTION_INDEX_SUFFIX}", self.rooms)
        }
    }
}

/// Queue naming: logical names, SQS names, dead-letter queues.
pub mod queue {
    /// The suffix SQS requires of FIFO queue names.
    pub const FIFO_SUFFIX: &str = ".fifo";
    /// The longest logical queue name, in characters.
    pub const MAX_LOGICAL_NAME_CHARS: usize = 40;
    /// SQS's longest queue name, `.fifo` included.
    pub const MAX_QUEUE_NAME_CHARS: usize = 80;

    /// Whether a logical queue name is valid: 1 to [`MAX_LOGICAL_NAME_CHARS`] ASCII
    /// letters, digits, `-` and `_` (room for the deploy program's `{app}-{stage}-`
    /// prefix and the `-dlq.fifo` suffix within SQS's 80 characters).
    pub fn valid_queue_name(name: &str) -> bool {
        (1..=MAX_LOGICAL_NAME_CHARS).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// The name of a queue's dead-letter queue: `{name}-dlq`, or `{stem}-dlq.fifo` for a
    /// name ending in `.fifo` (SQS requires the dead-letter queue of a FIFO queue to be a
    /// FIFO queue too).
    pub fn dead_letter_queue_name(queue: &str) -> String {
        match queue.strip_suffix(FIFO_SUFFIX) {
            Some(stem) => format!("{stem}-dlq{FIFO_SUFFIX}"),
            None => format!("{queue}-dlq"),
        }
    }

    /// The deploy program's prefix of a stage's SQS queue names: `{app}-{stage}-`, so
    /// `orders` is `{app}-{stage}-orders.fifo`.
    pub fn stage_prefix(app: &str, stage: &str) -> String {
        format!("{app}-{stage}-")
    }

    /// The SQS name of a logical queue by the rule `{prefix}{queue}.fifo` (`.fifo` is not
    /// doubled when the logical name already ends with it); `None` when the result is
    /// not a valid FIFO queue name.
    pub fn sqs_fifo_name(prefix: &str, queue: &str) -> Option<String> {
        let stem = queue.strip_suffix(FIFO_SUFFIX).unwrap_or(queue);
        if stem.is_empty() {
            return None;
        }
        let name = format!("{prefix}{stem}{FIFO_SUFFIX}");
        valid_fifo_name(&name).then_some(name)
    }

    /// The deploy program's SQS name of a logical queue (or of its dead-letter queue):
    /// the internal fan-out queue and its dead-letter queue are standard
    /// ([`sqs_standard_name`]), every other queue FIFO ([`sqs_fifo_name`]).
    pub fn sqs_name(prefix: &str, queue: &str) -> Option<String> {
        let fanout = super::fanout::QUEUE;
        if queue == fanout || queue == dead_letter_queue_name(fanout) {
            sqs_standard_name(prefix, queue)
        } else {
            sqs_fifo_name(prefix, queue)
        }
    }

    /// The SQS name of a standard queue by the rule `{prefix}{queue}` (the fan-out
    /// queue); `None` when the result is not a valid standard queue name.
    pub fn sqs_standard_name(prefix: &str, queue: &str) -> Option<String> {
        let name = format!("{prefix}{queue}");
        let valid = (1..=MAX_QUEUE_NAME_CHARS).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then_some(name)
    }

    /// A FIFO queue name SQS accepts: `[A-Za-z0-9_-]+\.fifo`, at most
    /// [`MAX_QUEUE_NAME_CHARS`] characters.
    pub fn valid_fifo_name(name: &str) -> bool {
        name.len() <= MAX_QUEUE_NAME_CHARS
            && name.strip_suffix(FIFO_SUFFIX).is_some_and(|stem| {
                !stem.is_empty()
                    && stem
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }
}

/// Sharded fan-out: the internal queue large sends are split onto, and its defaults
/// (see [`crate::fanout`]).
pub mod fanout {
    /// The logical name of the internal fan-out queue (its dead-letter queue is
    /// `{name}-dlq`, by [`super::queue::dead_letter_queue_name`]). An app queue of
    /// the same name would share it: the name is reserved.
    pub const QUEUE: &str = "switchboard-fanout";
    /// A send to more recipients than this is sharded through [`QUEUE`]; up to it, it
    /// runs inline in the caller as before.
    pub const DEFAULT_THRESHOLD: usize = 1000;
    /// Recipients per shard (one queue message, one consumer invocation's work).
    pub const DEFAULT_SHARD_SIZE: usize = 500;
    /// Recipients per page read of a sharded send (a page task queues them as
    /// shards): 10 shards, ~100 KB of DynamoDB items read per `Query`/`Scan` call.
    pub const DEFAULT_PAGE_SIZE: usize = 5000;
    /// Parallel `Scan` segments of a sharded broadcast.
    pub const DEFAULT_SCAN_SEGMENTS: u32 = 4;
    /// How long a frame stored by reference (too large for a shard message) is kept:
    /// longer than a fan-out's retries and the queue's redrive take.
    pub const FRAME_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
    /// The rooms table's partition key under which frames stored by reference live on
    /// AWS (a control character no room name a client sends has; `rooms()` skips it).
    pub const FRAME_ROOM: &str = "\u{1}switchboard-fanout-frames";
    /// How many times a shard's owed recipients are queued again after throttling or
    /// `@connections` failures before the rest goes to the dead-letter queue.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
    /// How many times one post is retried after a 429 (or 5xx) inside one attempt of a
    /// shard, with jittered exponential backoff, before the recipient is owed.
    pub const DEFAULT_POST_RETRIES: u32 = 6;
    /// The role (`_HANDLER`) of the Lambda function that consumes [`QUEUE`].
    pub const ROLE: &str = "fanout";
    /// The variable that sets the threshold on AWS (recipients; default
    /// [`DEFAULT_THRESHOLD`]).
    pub const THRESHOLD_ENV: &str = "SWITCHBOARD_FANOUT_THRESHOLD";
    /// The variable that sets the `@connections` rate budget of one fan-out function
    /// instance (posts per second; unset: unlimited).
    pub const RATE_ENV: &str = "SWITCHBOARD_FANOUT_RATE";
}

/// Room history, `resume` and request ids: field names and bounds of the wire protocol.
pub mod history {
    /// The field a room frame's sequence number is added as.
    pub const SEQ_FIELD: &str = "seq";
    /// The field a room frame's epoch is added as.
    pub const EPOCH_FIELD: &str = "epoch";
    /// How long a room keeps frames unless its rule says otherwise: 1 hour.
    pub const DEFAULT_RETENTION_SECS: u64 = 60 * 60;
    /// How many frames a room keeps unless its rule says otherwise.
    pub const DEFAULT_MAX_FRAMES: usize = 1000;
    /// The built-in route that resumes rooms after a reconnect.
    pub const RESUME_ROUTE: &str = "resume";
    /// The `action` of the answer to `resume`.
    pub const RESUMED_ACTION: &str = "resumed";
    /// The most rooms one `resume` may name.
    pub const MAX_RESUME_ROOMS: usize = 100;
    /// The request id field of client frames and of the frames answering them.
    pub const ID_FIELD: &str = "id";
    /// The longest request id, in characters.
    pub const MAX_REQUEST_ID_CHARS: usize = 64;
}

/// API Gateway's limits and timings, as the local gateway reproduces them and the
/// runtime enforces them before any call.
pub mod limits {
    /// The largest message a client may send or `@connections` may post: 128 KB.
    pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
    /// The largest WebSocket frame: 32 KB.
    pub const MAX_FRAME_BYTES: usize = 32 * 1024;
    /// The largest request body the management API reads (a POST over 128 KB is
    /// refused with 413 after reading it).
    pub const MAX_MANAGEMENT_BODY_BYTES: usize = 1024 * 1024;
    /// A connection's maximum age: 2 hours.
    pub const MAX_CONNECTION_AGE_SECS: i64 = 2 * 60 * 60;
    /// The idle timeout: 10 minutes.
    pub const IDLE_TIMEOUT_SECS: u64 = 10 * 60;
    /// How long a connection record outlives the connection's maximum age (its TTL
    /// margin): 15 minutes.
    pub const RECORD_TTL_MARGIN_SECS: i64 = 15 * 60;
    /// The integration timeout: 29 seconds.
    pub const INTEGRATION_TIMEOUT_SECS: u64 = 29;
    /// The largest SQS message body: 256 KB.
    pub const MAX_QUEUE_BODY_BYTES: usize = 256 * 1024;
}
