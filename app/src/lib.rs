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
pub mod csrf;
pub mod endpoints;
pub mod error;
pub mod iam;
pub mod journal;
pub mod lambda;
pub mod list_view;
pub mod names;
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
    // Lazy routes (shell.rs): hydration waits for the page's chunk, so it is
    // asynchronous. `data-hydrated` on <body> marks the moment the whole page
    // became interactive; the browser tests wait for it before clicking, and
    // the page-load benchmark measures to it.
    // A plain wasm-bindgen task: Leptos sets up its own executor inside
    // `hydrate_from_async`, not before it.
    wasm_bindgen_futures::spawn_local(async {
        let body = leptos::prelude::document().body().expect("the page has a <body>");
        leptos::mount::hydrate_from_async(body.clone(), App).await.forget();
        auth::page_hydrated();
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
