//! The macros in an ordinary crate that uses the workspace lints (`unsafe_code` is
//! forbidden, `missing_docs` warned): the registration compiles cleanly there and the
//! routes are in `switchboard::routes()`.

use switchboard::RouteKind;
use switchboard::prelude::*;

/// Says hello.
#[ws_route("hello", timeout = 3)]
async fn hello(_ctx: Ctx) -> &'static str {
    "hello"
}

#[ws_default]
async fn fallback(_id: ConnectionId) {}

#[test]
fn routes_are_registered() {
    let routes = switchboard::routes().unwrap();
    let hello = routes.get("hello").unwrap().def;
    assert_eq!(hello.kind, RouteKind::Custom);
    assert_eq!(hello.function, "hello");
    assert_eq!(hello.module, module_path!());
    assert_eq!(hello.doc, "Says hello.");
    assert_eq!(hello.options.timeout_secs, Some(3));
    assert_eq!(hello.options.memory_mb, None);
    assert_eq!(hello.location.line, 10);

    let fallback = routes.get("$default").unwrap().def;
    assert_eq!(fallback.kind, RouteKind::Default);
    assert_eq!(fallback.function, "fallback");
}
