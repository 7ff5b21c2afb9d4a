// Handlers in a module, in a function body, with a raw identifier, and with a
// `pub(crate)` visibility all register, and the functions stay usable as written;
// a `#[cfg]`'d-out handler does not register.

mod chat {
    use switchboard::prelude::*;

    pub(crate) mod rooms {
        use switchboard::prelude::*;

        /** Joins a room.
         * Everyone in it is told.
         *
         * More.
         */
        #[ws_route("join")]
        pub(crate) async fn join(_ctx: Ctx, Json(_room): Json<String>) {}
    }

    #[ws_route("leave", timeout = 2)]
    pub async fn r#leave(_ctx: Ctx) {}
}

// A `#[cfg]` below the attribute removes the registration along with the function.
#[switchboard::ws_route("gone")]
#[cfg(any())]
async fn gone() {}

fn main() {
    #[switchboard::ws_route("local")]
    async fn local(_id: switchboard::ConnectionId) {}
    let local_line = line!() - 1;

    let routes = switchboard::routes().unwrap();

    let join = routes.get("join").unwrap().def;
    assert_eq!(join.module, concat!(module_path!(), "::chat::rooms"));
    assert_eq!(join.function, "join");
    assert_eq!(join.doc, "Joins a room. Everyone in it is told.");

    let leave = routes.get("leave").unwrap().def;
    assert_eq!(leave.function, "leave");
    assert_eq!(leave.module, concat!(module_path!(), "::chat"));
    assert_eq!(leave.options.timeout_secs, Some(2));

    let local_def = routes.get("local").unwrap().def;
    assert_eq!(local_def.function, "local");
    assert_eq!(local_def.location.line, local_line);

    assert!(routes.get("gone").is_none());

    let custom: Vec<&str> = routes.custom_keys().collect();
    for key in ["join", "leave", "local"] {
        assert!(custom.contains(&key), "{key} missing from {custom:?}");
    }

    let _ = (chat::rooms::join, chat::leave, local);
}
