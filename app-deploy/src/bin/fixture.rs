//! A test fixture: the example chat plus one route, `extraRoute`, deployed by the same
//! program. The deploy tests compare its resources with the chat's. The route needs an
//! API key and has its own throttling, so the fixture's stage has a usage plan.

use switchboard::prelude::*;

/// The extra route: answers nothing, uses the store.
#[ws_route(
    "extraRoute",
    memory = 512,
    timeout = 7,
    api_key = true,
    throttle_rate = 50,
    throttle_burst = 20
)]
async fn extra_route(ctx: Ctx) -> Result<(), WsError> {
    ctx.join("extra").await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    switchboard_deploy::run(&chat_app::app(), chat_app::WEB_PAGE, "chat-app")
}
