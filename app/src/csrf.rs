//! Every request a page sends to its own console carries the CSRF token:
//! the `sagedeck_csrf` cookie (which only pages of this origin can read)
//! echoed in `X-Sagedeck-Csrf`. Server functions send it through
//! `CsrfClient`, the client every `#[server]` here names (`client = …`, the
//! server-function crate's way to add to its requests); the Test panel's
//! own upload sets it with `token()`.

use leptos::server_fn::client::{browser::BrowserClient, Client};
use leptos::server_fn::error::FromServerFnError;
use leptos::server_fn::request::browser::BrowserRequest;
use leptos::server_fn::response::browser::BrowserResponse;
use leptos::server_fn::Bytes;
use std::future::Future;

/// The header the server compares with the cookie.
pub const HEADER: &str = "x-sagedeck-csrf";

/// The browser's fetch client, with the CSRF header added.
pub struct CsrfClient;

impl<E, IS, OS> Client<E, IS, OS> for CsrfClient
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(req: BrowserRequest) -> impl Future<Output = Result<BrowserResponse, E>> + Send {
        if let Some(token) = token() {
            req.headers().set(HEADER, &token);
        }
        <BrowserClient as Client<E, IS, OS>>::send(req)
    }

    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (impl futures::Stream<Item = Result<Bytes, Bytes>> + Send + 'static, impl futures::Sink<Bytes> + Send + 'static),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, IS, OS>>::spawn(future)
    }
}

/// The token from this origin's cookie; None on the server, or before the
/// console has set one.
pub fn token() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let document = web_sys::window()?.document()?.dyn_into::<web_sys::HtmlDocument>().ok()?;
        let cookies = document.cookie().ok()?;
        cookies.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == "sagedeck_csrf").map(|(_, v)| v.to_string())
    }
    #[cfg(not(feature = "hydrate"))]
    None
}
