use switchboard::RouteKind;
use switchboard::prelude::*;

#[derive(Deserialize)]
struct Echo {
    text: String,
}

/// Echoes a line back
///   to the sender.
///
/// Not part of the summary.
#[ws_route("echo", memory = 512, timeout = 10)]
async fn echo(_ctx: Ctx, Json(msg): Json<Echo>) -> Result<String, WsError> {
    Ok(msg.text)
}
const ECHO_LINE: u32 = line!() - 3;

#[ws_route("chat/history.v2", api_key = true, throttle_rate = 50, throttle_burst = 20)]
async fn history() -> Json<Vec<String>> {
    Json(Vec::new())
}
const HISTORY_LINE: u32 = line!() - 3;

/// Signed-in users only.
#[ws_connect]
async fn connect(_identity: Identity) -> Result<(), WsError> {
    Ok(())
}

#[ws_disconnect(timeout = 5)]
async fn disconnect(_id: ConnectionId) {}

#[ws_default(memory = 128, timeout = 900)]
async fn fallback(_ctx: Ctx) {}

fn main() {
    let routes = switchboard::routes().unwrap();
    let def = |key: &str| {
        routes
            .get(key)
            .unwrap_or_else(|| panic!("no route {key}"))
            .def
    };

    let echo = def("echo");
    assert_eq!(echo.key, "echo");
    assert_eq!(echo.kind, RouteKind::Custom);
    assert_eq!(echo.function, "echo");
    assert_eq!(echo.module, module_path!());
    assert_eq!(echo.location.file, file!());
    assert_eq!(
        echo.location.line, ECHO_LINE,
        "the line of the function's name"
    );
    assert_eq!(echo.options.memory_mb, Some(512));
    assert_eq!(echo.options.timeout_secs, Some(10));
    assert_eq!(echo.doc, "Echoes a line back to the sender.");

    let history = def("chat/history.v2");
    assert_eq!(history.kind, RouteKind::Custom);
    assert_eq!(history.function, "history");
    assert_eq!(history.location.line, HISTORY_LINE);
    assert_eq!(
        history.options,
        switchboard::RouteOptions {
            api_key: true,
            throttle_rate: Some(50),
            throttle_burst: Some(20),
            ..Default::default()
        }
    );
    assert_eq!(history.doc, "");

    let connect = def("$connect");
    assert_eq!(connect.kind, RouteKind::Connect);
    assert_eq!(connect.function, "connect");
    assert_eq!(connect.doc, "Signed-in users only.");
    assert_eq!(connect.options, Default::default());

    let disconnect = def("$disconnect");
    assert_eq!(disconnect.kind, RouteKind::Disconnect);
    assert_eq!(disconnect.function, "disconnect");
    assert_eq!(disconnect.options.memory_mb, None);
    assert_eq!(disconnect.options.timeout_secs, Some(5));

    let fallback = def("$default");
    assert_eq!(fallback.kind, RouteKind::Default);
    assert_eq!(fallback.function, "fallback");
    assert_eq!(fallback.options.memory_mb, Some(128));
    assert_eq!(fallback.options.timeout_secs, Some(900));

    // The handlers were built from the functions and remain callable as written.
    let _ = (
        routes.get("echo").unwrap().handler.clone(),
        echo,
        history,
        fallback,
    );
}
