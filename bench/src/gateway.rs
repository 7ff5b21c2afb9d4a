//! The Switchboard local gateway running the example chat app, in-process.

use switchboard::local::LocalConfig;
use tokio::{runtime::Runtime, sync::oneshot};

use crate::{BoxError, Running};

/// Starts the gateway on 127.0.0.1:0 (otherwise default settings) on `rt`,
/// until [`Running::stop`].
pub(crate) fn launch(rt: &Runtime) -> Result<Running, BoxError> {
    let config = LocalConfig {
        addr: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let gw = rt.block_on(async { chat_app::app().dev_auth().serve_local(config).await })?;
    let url = gw.ws_url();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let done = rt.spawn(async move {
        // Stop when asked, or when the bench drops its handle.
        let _ = stop_rx.await;
        gw.shutdown().await;
    });
    Ok(Running::new(url, stop_tx, done))
}
