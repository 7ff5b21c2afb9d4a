//! The {{project-name}} service.
//!
//! One route, `hello`: `{"action":"hello","name":"Bob"}` is answered with
//! `{"action":"hello","message":"Hello, Bob!","from":"alice"}` (`from` is the caller, as
//! the authorizer established). Switchboard adds the rest: `$connect`/`$disconnect`
//! bookkeeping, `ping` → `pong`, and an `unknown_route` error frame for other actions.

use switchboard::prelude::*;

/// The service's name: the prefix of its AWS resources (1-20 lowercase letters, digits
/// or `-` for the deploy program, unless `pulumi config set app` overrides it).
pub const NAME: &str = "{{project-name}}";

/// The web page served at `/` (embedded in the binary; S3 behind CloudFront on AWS).
pub const WEB_PAGE: &str = include_str!("../web/index.html");

/// The longest name `hello` accepts, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The service, ready for [`App::main`], a test gateway or the deploy program.
pub fn app() -> App {
    App::new().name(NAME).web_page(WEB_PAGE)
}

/// `{"action":"hello","name":N}`; without a name, the caller is greeted by their own.
#[derive(Debug, Deserialize)]
pub struct Hello {
    /// Whom to greet.
    #[serde(default)]
    pub name: Option<String>,
}

/// The reply to `hello`.
#[derive(Debug, Serialize)]
pub struct Greeting {
    /// Always `"hello"`.
    pub action: &'static str,
    /// The greeting.
    pub message: String,
    /// Who asked: the caller's user name.
    pub from: String,
}

/// Greets someone; the reply goes back to the caller only (a route response).
#[ws_route("hello")]
pub async fn hello(ctx: Ctx, Json(req): Json<Hello>) -> Result<Json<Greeting>, WsError> {
    let from = ctx.identity().username().to_owned();
    let name = req.name.unwrap_or_else(|| from.clone());
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(WsError::new(
            "invalid_name",
            format!("a name is 1-{MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(Json(Greeting {
        action: "hello",
        message: format!("Hello, {name}!"),
        from,
    }))
}
