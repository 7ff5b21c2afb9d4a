//! Handlers: plain async functions whose arguments are extractors.
//!
//! [`Handler`] is implemented for `async fn`s of up to 12 arguments: every argument but the
//! last implements [`FromEvent`]; the last implements [`FromMessage`] (which every
//! [`FromEvent`] type does too), so the payload extractor ([`Json`](crate::Json)) can only
//! come last.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::extract::{Capabilities, FromEvent, FromMessage};
use crate::request::WsRequest;
use crate::response::{Frame, IntoWsResponse, WsError};

/// The future a type-erased handler returns: the route response body, if any.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Option<Frame>, WsError>> + Send>>;

/// An async function usable as a route handler.
///
/// You do not implement this: it is implemented for `async fn`s whose arguments are
/// extractors and whose output implements [`IntoWsResponse`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid Switchboard handler",
    label = "not a valid handler",
    note = "a handler is an `async fn` whose arguments are extractors (`Ctx`, `ConnectionId`, `Identity`, `State<S>`), with at most one payload extractor (`Json<T>`) as the last argument, and whose output implements `IntoWsResponse` (`()`, `Json<T>`, `Frame`, `Result<T, E>` with `E: Into<WsError>`)"
)]
pub trait Handler<T>: Clone + Send + Sync + Sized + 'static {
    /// Runs the handler for one event.
    fn call(self, req: Arc<WsRequest>) -> HandlerFuture;
    /// Whether the handler's output type can carry a route response body.
    fn returns_value(&self) -> bool;
    /// What the handler's extractors need from the platform.
    fn capabilities(&self) -> Capabilities;
}

/// A handler with its argument types erased, as stored in the registry.
pub trait ErasedHandler: Send + Sync + 'static {
    /// Runs the handler for one event.
    fn call(&self, req: Arc<WsRequest>) -> HandlerFuture;
    /// Whether the handler's output type can carry a route response body.
    fn returns_value(&self) -> bool;
    /// What the handler's extractors need from the platform.
    fn capabilities(&self) -> Capabilities;
}

/// A shared, type-erased handler.
pub type BoxedHandler = Arc<dyn ErasedHandler>;

struct Erased<H, T> {
    handler: H,
    _args: std::marker::PhantomData<fn() -> T>,
}

impl<H, T> ErasedHandler for Erased<H, T>
where
    H: Handler<T>,
    T: 'static,
{
    fn call(&self, req: Arc<WsRequest>) -> HandlerFuture {
        self.handler.clone().call(req)
    }
    fn returns_value(&self) -> bool {
        self.handler.returns_value()
    }
    fn capabilities(&self) -> Capabilities {
        self.handler.capabilities()
    }
}

/// Erases a handler's argument types. Used by the attribute macros and by
/// `TestGateway` (switchboard-local) users who register handlers by hand.
pub fn erase<H, T>(handler: H) -> BoxedHandler
where
    H: Handler<T>,
    T: 'static,
{
    Arc::new(Erased {
        handler,
        _args: std::marker::PhantomData,
    })
}

fn reject<E: Into<WsError>>(err: E) -> HandlerFuture {
    let err = err.into();
    Box::pin(std::future::ready(Err(err)))
}

impl<F, Fut, R> Handler<((),)> for F
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoWsResponse,
{
    fn call(self, _req: Arc<WsRequest>) -> HandlerFuture {
        Box::pin(async move { self().await.into_ws_response() })
    }
    fn returns_value(&self) -> bool {
        R::HAS_BODY
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}

macro_rules! impl_handler {
    ([$($ty:ident),*], $last:ident) => {
        #[allow(non_snake_case, unused_mut)]
        impl<F, Fut, R, M, $($ty,)* $last> Handler<(M, $($ty,)* $last,)> for F
        where
            F: FnOnce($($ty,)* $last) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoWsResponse,
            $( $ty: FromEvent + Send + 'static, )*
            $last: FromMessage<M> + Send + 'static,
        {
            fn call(self, req: Arc<WsRequest>) -> HandlerFuture {
                $(
                    let $ty = match $ty::from_event(&req) {
                        Ok(value) => value,
                        Err(rejection) => return reject(rejection),
                    };
                )*
                let $last = match $last::from_message(&req) {
                    Ok(value) => value,
                    Err(rejection) => return reject(rejection),
                };
                Box::pin(async move { self($($ty,)* $last).await.into_ws_response() })
            }
            fn returns_value(&self) -> bool {
                R::HAS_BODY
            }
            fn capabilities(&self) -> Capabilities {
                let mut caps = Capabilities::default();
                $( caps.merge($ty::capabilities()); )*
                caps.merge($last::capabilities());
                caps
            }
        }
    };
}

impl_handler!([], T1);
impl_handler!([T1], T2);
impl_handler!([T1, T2], T3);
impl_handler!([T1, T2, T3], T4);
impl_handler!([T1, T2, T3, T4], T5);
impl_handler!([T1, T2, T3, T4, T5], T6);
impl_handler!([T1, T2, T3, T4, T5, T6], T7);
impl_handler!([T1, T2, T3, T4, T5, T6, T7], T8);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8], T9);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9], T10);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10], T11);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11], T12);
