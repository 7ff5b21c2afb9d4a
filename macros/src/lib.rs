//! Attribute macros for [Switchboard](https://docs.rs/switchboard): they turn plain
//! `async fn`s into WebSocket route handlers and register them at link time.
//!
//! Use them through the runtime crate (`use switchboard::prelude::*;`), not directly:
//! the generated code refers to `::switchboard::__private`, so the runtime must be a
//! dependency named `switchboard`.
//!
//! # `#[ws_route("key")]`: a custom route
//!
//! ```ignore
//! use switchboard::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct SendMessage { room: String, text: String }
//!
//! /// Relays a chat line to everyone in a room.
//! #[ws_route("sendMessage", memory = 512, timeout = 10)]
//! async fn send_message(ctx: Ctx, Json(msg): Json<SendMessage>) -> Result<(), WsError> {
//!     ctx.room(&msg.room).send(&msg.text).await?;
//!     Ok(())
//! }
//! ```
//!
//! The key is the value the route selection expression (`$request.body.action`) must
//! produce for a frame to reach this handler. It is a non-empty string literal of at most
//! 128 characters, without whitespace or control characters, that does not start with
//! `$` (API Gateway reserves those; use the three attributes below for `$connect`,
//! `$disconnect` and `$default`). Keys must be unique across the program; duplicates are
//! reported when the registry is built (`switchboard::routes()`).
//!
//! # `#[ws_connect]`, `#[ws_disconnect]`, `#[ws_default]`: the reserved routes
//!
//! ```ignore
//! /// Only signed-in users may connect.
//! #[ws_connect]
//! async fn connect(identity: Identity) -> Result<(), WsError> { /* ... */ Ok(()) }
//!
//! #[ws_disconnect(timeout = 5)]
//! async fn disconnect(ctx: Ctx) { /* ... */ }
//!
//! /// Frames that match no route key.
//! #[ws_default]
//! async fn fallback(ctx: Ctx) -> Result<(), WsError> { /* ... */ Ok(()) }
//! ```
//!
//! They override the runtime's built-in handling of `$connect` (the WebSocket upgrade),
//! `$disconnect` (after the socket closed) and `$default` (frames that match no key).
//! They take no key; the same options as `#[ws_route]` are allowed.
//!
//! # Grammar
//!
//! ```text
//! #[ws_route(KEY [, OPTION]* [,])]
//! #[ws_connect] | #[ws_connect(OPTION [, OPTION]* [,])]      (same for ws_disconnect, ws_default)
//!
//! OPTION := memory = INT     Lambda memory in MB,        128..=10240
//!         | timeout = INT    Lambda timeout in seconds,  1..=900
//!         | forward = QUEUE  forward the frame to this queue once the handler succeeds
//!         | queues = [QUEUE, ...]   queues the handler may send to with ctx.forward
//!         | emits = [TYPE, ...]     message types the handler pushes (for the AsyncAPI
//!                                   document and the TypeScript client)
//!
//! #[queue_consumer(QUEUE [, COPTION]* [,])]
//! COPTION := memory = INT | timeout = INT | emits = [TYPE, ...]
//!          | batch_size = INT   messages per Lambda invocation, 1..=10
//! QUEUE   := string literal, 1 to 40 ASCII letters, digits, `-`, `_`
//! ```
//!
//! Each option may be given once; values are plain literals.
//!
//! # The function
//!
//! A handler is a free, non-generic `async fn` (not `const`, `unsafe` or `extern`, no
//! `self`) whose arguments are extractors (`Ctx`, `ConnectionId`, `Identity`,
//! `State<S>`, and `Json<T>` as the last argument) and whose output implements
//! `IntoWsResponse`. Its first doc-comment paragraph is recorded as the route's
//! description.
//!
//! # Errors
//!
//! Every mistake in the attribute and the signature is reported at once, each pointing at
//! the offending token; the function itself is still emitted unchanged, so that the rest
//! of the crate compiles as usual. An argument that is not an extractor is reported by
//! the compiler on the function's name:
//!
//! ```text
//! error[E0277]: `fn(u32) -> ... {handler}` is not a valid Switchboard handler
//! ```
//!
//! # Expansion
//!
//! The function is kept as written and followed by a registration:
//!
//! ```ignore
//! const _: () = {                // with the function's `#[cfg]`s, if any
//!     fn __switchboard_handler() -> ::switchboard::__private::BoxedHandler {
//!         ::switchboard::__private::erase(send_message)
//!     }
//!     ::switchboard::__private::inventory::submit! {
//!         ::switchboard::__private::RouteDef {
//!             key: "sendMessage",
//!             kind: ::switchboard::__private::RouteKind::Custom,
//!             function: "send_message",
//!             module: ::core::module_path!(),
//!             location: ::switchboard::__private::SourceLocation {
//!                 file: ::core::file!(),
//!                 line: ::core::line!(), // the line of `send_message`
//!             },
//!             options: ::switchboard::__private::RouteOptions {
//!                 memory_mb: ::core::option::Option::Some(512),
//!                 timeout_secs: ::core::option::Option::Some(10),
//!                 forward: ::core::option::Option::None,
//!                 queues: &[],
//!                 api_key: false,
//!                 throttle_rate: ::core::option::Option::None,
//!                 throttle_burst: ::core::option::Option::None,
//!             },
//!             doc: "Relays a chat line to everyone in a room.",
//!             handler: __switchboard_handler,
//!         }
//!     }
//! };
//! ```

use proc_macro::TokenStream;

mod attr;
mod errors;
mod expand;
mod func;

use attr::Kind;

/// Registers an `async fn` as the handler of a custom route key.
///
/// ```ignore
/// #[ws_route("sendMessage")]
/// async fn send_message(ctx: Ctx, Json(msg): Json<SendMessage>) -> Result<(), WsError> { .. }
///
/// #[ws_route("history", memory = 1024, timeout = 30)]
/// async fn history(ctx: Ctx) -> Json<Vec<Line>> { .. }
/// ```
///
/// The key is a non-empty string literal of at most 128 characters, without whitespace
/// or control characters, not starting with `$`. Options: `memory = <MB>` (128..=10240),
/// `timeout = <seconds>` (1..=900), `forward = "queue"` (forward the frame once the
/// handler returns `Ok`), `queues = ["queue", ..]` (queues `ctx.forward` may send to) and
/// `emits = [Type, ..]` (messages the handler pushes, for the contract). See the
/// [crate documentation](crate).
#[proc_macro_attribute]
pub fn ws_route(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Route, args.into(), item.into()).into()
}

/// Registers an `async fn` as the consumer of a queue.
///
/// ```ignore
/// #[queue_consumer("orders", batch_size = 10, timeout = 30)]
/// async fn fulfil(ctx: QueueCtx, order: Message<PlaceOrder>) -> Result<(), WsError> { .. }
/// ```
///
/// The queue name is a string literal of 1 to 40 ASCII letters, digits, `-` and `_`.
/// The function takes `Message<T>` (the typed payload and its sender), optionally after
/// a `QueueCtx`, and returns `()` or `Result<(), E>` with `E: Display`. Options:
/// `batch_size = <n>` (messages per Lambda invocation, 1..=10), `memory = <MB>`,
/// `timeout = <seconds>` and `emits = [Type, ..]`. A queue has at most one consumer.
#[proc_macro_attribute]
pub fn queue_consumer(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Consumer, args.into(), item.into()).into()
}

/// Registers an `async fn` as the `$connect` handler, run during the WebSocket upgrade.
///
/// ```ignore
/// #[ws_connect]
/// async fn connect(identity: Identity) -> Result<(), WsError> { .. }
/// ```
///
/// Takes no route key; accepts the same options as [`ws_route`](macro@ws_route).
#[proc_macro_attribute]
pub fn ws_connect(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Connect, args.into(), item.into()).into()
}

/// Registers an `async fn` as the `$disconnect` handler, run after a socket closed.
///
/// ```ignore
/// #[ws_disconnect(timeout = 5)]
/// async fn disconnect(ctx: Ctx) { .. }
/// ```
///
/// Takes no route key; accepts the same options as [`ws_route`](macro@ws_route).
#[proc_macro_attribute]
pub fn ws_disconnect(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Disconnect, args.into(), item.into()).into()
}

/// Registers an `async fn` as the `$default` handler, for frames that match no route key.
///
/// ```ignore
/// #[ws_default]
/// async fn fallback(ctx: Ctx) -> Result<(), WsError> { .. }
/// ```
///
/// Takes no route key; accepts the same options as [`ws_route`](macro@ws_route).
#[proc_macro_attribute]
pub fn ws_default(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Default, args.into(), item.into()).into()
}
