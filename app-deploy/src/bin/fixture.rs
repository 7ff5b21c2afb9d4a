//! A test fixture: the example chat plus one route, `extraRoute`, deployed by the same
//! program. The deploy tests compare its resources with the chat's.

use switchboard::prelude::*;

/// The extra route: answers nothing, uses the store.
#[ws_route("extraRoute", memory = 512, timeout = 7)]
async fn extra_route(ctx: Ctx) -> Result<(), WsError> {
    ctx.join("extra").await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    switchboard_deploy::run(&chat_app::app(), chat_app::WEB_PAGE, "chat-app")
}
