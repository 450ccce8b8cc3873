//! Sagedeck's user interface: pages, components, the types shared by browser
//! and server, and the server-function declarations.
//!
//! This crate compiles twice: to wasm with the `hydrate` feature, and into the
//! server with `ssr`. Server functions here only *declare* the calls; their
//! bodies ask a service trait (from context) that the `server` crate
//! implements, so the AWS SDK, sqlx and tch never reach the wasm build.

pub mod auth;
pub mod calendar;
pub mod components;
pub mod costs;
pub mod endpoints;
pub mod error;
pub mod iam;
pub mod journal;
pub mod lambda;
pub mod list_view;
pub mod notebooks;
pub mod overview;
pub mod scaling;
pub mod schedules;
pub mod shell;
pub mod training;

pub use error::ApiError;
pub use shell::{shell, App};

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    send_csrf_token_with_fetch();
    leptos::mount::hydrate_body(App);
}

/// Every request this page sends to its own origin carries the CSRF token
/// (from the `sagedeck_csrf` cookie, which only pages of this origin can
/// read) in `X-Sagedeck-Csrf`. Wrapping `fetch` once covers the server
/// functions, whose client cannot be given headers, and our own uploads.
#[cfg(feature = "hydrate")]
fn send_csrf_token_with_fetch() {
    use wasm_bindgen::{prelude::Closure, JsCast, JsValue};
    let global = js_sys::global();
    let Some(original) = js_sys::Reflect::get(&global, &"fetch".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok()) else {
        return;
    };
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let this = global.clone();
    let wrapped = Closure::<dyn Fn(JsValue, JsValue) -> JsValue>::new(move |input: JsValue, init: JsValue| {
        let request = match (input.dyn_ref::<web_sys::Request>(), init.is_undefined()) {
            (Some(r), true) => web_sys::Request::new_with_request(r),
            (Some(r), false) => web_sys::Request::new_with_request_and_init(r, init.unchecked_ref()),
            (None, no_init) => {
                let url = String::from(input.unchecked_ref::<js_sys::Object>().to_string());
                if no_init {
                    web_sys::Request::new_with_str(&url)
                } else {
                    web_sys::Request::new_with_str_and_init(&url, init.unchecked_ref())
                }
            }
        };
        let result = request.and_then(|req| {
            if req.url().starts_with(&origin) {
                if let Some(token) = csrf_cookie() {
                    req.headers().set("x-sagedeck-csrf", &token)?;
                }
            }
            original.call1(&this, &req)
        });
        result.unwrap_or_else(|e| js_sys::Promise::reject(&e).into())
    });
    let _ = js_sys::Reflect::set(&global, &"fetch".into(), wrapped.as_ref());
    wrapped.forget();
}

#[cfg(feature = "hydrate")]
fn csrf_cookie() -> Option<String> {
    use wasm_bindgen::JsCast;
    let document = web_sys::window()?.document()?.dyn_into::<web_sys::HtmlDocument>().ok()?;
    let cookies = document.cookie().ok()?;
    cookies.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == "sagedeck_csrf").map(|(_, v)| v.to_string())
}
