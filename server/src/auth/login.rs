//! The sign-in page and form. A plain HTML form (it works before, and
//! without, the wasm), protected by the origin check and a double-submit CSRF
//! token, and rate-limited per address and per name.

use super::guard::{check_origin, cookie, same_token, secure, set_cookie, CurrentSession, CSRF_COOKIE, SESSION_COOKIE};
use super::users::SESSION_HOURS;
use super::Auth;
use crate::journal::{self, Change};
use app::auth::{Principal, Role};
use app::ApiError;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub fn routes(auth: Arc<Auth>) -> Router {
    Router::new().route("/login", get(page)).route("/auth/login", post(login)).with_state(auth)
}

#[derive(Deserialize)]
pub struct PageQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Only paths of this console: `/x`, never `//host` or a full URL, and no
/// control characters or spaces (a browser drops a tab or newline from
/// `/\t/evil.example` and reads `//evil.example`).
pub fn safe_next(next: &str) -> &str {
    let plain = next.chars().all(|c| c.is_ascii_graphic());
    if plain && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.contains("://") {
        next
    } else {
        "/"
    }
}

/// The cookie that marks a browser that signed in as a user before.
pub const DEVICE_COOKIE: &str = "sagedeck_device";
/// How long a device is remembered.
const DEVICE_DAYS: u32 = 365;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn render(csrf: &str, next: &str, error: Option<&str>, open: bool) -> String {
    let error = error.map(|e| format!(r#"<p class="login-error" role="alert" id="login-error">{}</p>"#, escape(e))).unwrap_or_default();
    let note = if open {
        r#"<p class="login-note">This console runs without sign-in (loopback, no users yet): <a href="/">go straight in</a>.</p>"#
    } else {
        ""
    };
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Sign in · Sagedeck</title><link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/pkg/sagedeck.css"></head><body class="login-body">
<main class="login card"><h1><span class="brand-mark" aria-hidden="true">◆</span> Sagedeck</h1>{note}{error}
<form method="post" action="/auth/login">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label class="field"><span>User</span><input name="name" id="login-name" autocomplete="username" required autofocus></label>
<label class="field"><span>Password</span><input name="password" id="login-password" type="password" autocomplete="current-password" required></label>
<button class="btn btn-primary" type="submit" id="login-submit">Sign in</button>
</form></main></body></html>"#,
        csrf = escape(csrf),
        next = escape(safe_next(next)),
    )
}

/// The form, with a CSRF cookie to echo (a fresh one unless the browser has one).
async fn page(State(auth): State<Arc<Auth>>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    let (csrf, fresh) = match cookie(&headers, CSRF_COOKIE) {
        Some(c) if auth.csrf_is_ours(c) => (c.to_string(), false),
        _ => (auth.new_csrf(), true),
    };
    let open = !auth.required().await;
    let mut res = Html(render(&csrf, q.next.as_deref().unwrap_or("/"), None, open)).into_response();
    if fresh {
        res.headers_mut().append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &csrf, false, secure(&auth, &headers), None));
    }
    res
}

async fn login(
    State(auth): State<Arc<Auth>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or("").to_string();
    let again = |status: StatusCode, message: &str| {
        (status, Html(render(&csrf, &form.next, Some(message), false))).into_response()
    };
    if let Err(reason) = check_origin(&headers, auth.trust_proxy) {
        return again(StatusCode::FORBIDDEN, &reason);
    }
    if csrf.is_empty() || !auth.csrf_is_ours(&csrf) || !same_token(&csrf, &form.csrf) {
        return again(StatusCode::FORBIDDEN, "The form expired or came from another site. Sign in again from this page.");
    }
    // A name no user can have (wrong characters, look-alike letters) is
    // refused without a password check, and journaled as it can be read.
    if super::users::check_name(&form.name).is_err() {
        journal_login(&auth, &form.name, &client, Err("not a valid user name (no user has it)".into())).await;
        return again(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    }
    // Failures count per address and per name; a browser that signed in as
    // this user before (its device cookie) is not locked out by failures from
    // other addresses (docs/security.md says why).
    let known = match cookie(&headers, DEVICE_COOKIE) {
        Some(device) => auth.users.is_device_of(device, &form.name).await.unwrap_or(false),
        None => false,
    };
    let mut keys = vec![format!("ip:{}", client.ip())];
    if !known {
        keys.push(format!("user:{}", form.name));
    }
    // Counted before it is judged: concurrent guesses cannot all pass.
    if let Err(wait) = auth.limiter.lock().expect("login limiter").attempt(&keys, Instant::now()) {
        let mut res = again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins: try again in {} minutes.", wait.as_secs().div_ceil(60)),
        );
        res.headers_mut().insert(header::RETRY_AFTER, wait.as_secs().into());
        return res;
    }
    let Ok(_checking) = tokio::time::timeout(std::time::Duration::from_secs(5), auth.verifying.acquire()).await else {
        let mut res = again(StatusCode::TOO_MANY_REQUESTS, "Too many sign-ins at once: try again in a moment.");
        res.headers_mut().insert(header::RETRY_AFTER, 1.into());
        return res;
    };
    let verified = auth.users.verify(&form.name, &form.password).await;
    drop(_checking);
    let role = match verified {
        Ok(Some(role)) => role,
        Ok(None) => {
            journal_login(&auth, &form.name, &client, Err("wrong user name or password".into())).await;
            return again(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
        }
        Err(e) => return again(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    {
        let mut limiter = auth.limiter.lock().expect("login limiter");
        limiter.forget_last(&keys[0]);
        limiter.succeeded(&format!("user:{}", form.name));
    }
    let device = if known { None } else { auth.users.add_device(&form.name).await.ok() };
    let (token, csrf) = match auth.users.start_session(&form.name, auth.new_csrf()).await {
        Ok(t) => t,
        Err(e) => return again(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    journal_login(&auth, &form.name, &client, Ok(role)).await;
    let secure = secure(&auth, &headers);
    let age = SESSION_HOURS * 3600;
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, safe_next(&form.next).to_string())]).into_response();
    // A new CSRF token with the new session: one from before sign-in is not reused.
    res.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, true, secure, Some(age)));
    res.headers_mut().append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &csrf, false, secure, Some(age)));
    if let Some(device) = device {
        res.headers_mut().append(header::SET_COOKIE, set_cookie(DEVICE_COOKIE, &device, true, secure, Some(DEVICE_DAYS * 86_400)));
    }
    res
}

async fn journal_login(auth: &Auth, name: &str, client: &SocketAddr, outcome: Result<Role, String>) {
    // Under its own name only if it could be a user's: a look-alike is
    // journaled as what it is, escaped.
    let actor = if super::users::check_name(name).is_ok() { name.to_string() } else { format!("not a user: {}", crate::journal::printable(name, 64)) };
    let actor = Principal { name: actor, role: Role::Viewer, open: false };
    journal::acting_as(actor, auth.journal.record(Change {
        backend: "local",
        action: "auth.login",
        target: &format!("{} from {}", crate::journal::printable(name, 64), client.ip()),
        before: None,
        after: outcome.as_ref().ok().map(|r| format!("signed in as {r}")),
        outcome: outcome.map(|_| ()),
    }))
    .await;
}

/// Sign-out for the `auth/logout` server function.
pub struct SessionEnder {
    pub auth: Arc<Auth>,
}

#[async_trait::async_trait]
impl app::auth::SessionService for SessionEnder {
    async fn end_current(&self) -> Result<(), ApiError> {
        let parts = leptos::prelude::use_context::<axum::http::request::Parts>()
            .ok_or_else(|| ApiError::Internal("no request in context".into()))?;
        let session = parts.extensions.get::<CurrentSession>().cloned();
        let Some(CurrentSession(hash)) = session else {
            return Err(ApiError::Conflict("this request has no session to end (API tokens are revoked with `sagedeck user remove`)".into()));
        };
        self.auth.users.end_session(&hash).await.map_err(ApiError::from)?;
        self.auth
            .journal
            .record(Change { backend: "local", action: "auth.logout", target: "session", before: None, after: None, outcome: Ok(()) })
            .await;
        let secure = secure(&self.auth, &parts.headers);
        if let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            options.append_header(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", true, secure, Some(0)));
            options.append_header(header::SET_COOKIE, set_cookie(CSRF_COOKIE, "", false, secure, Some(0)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_console() {
        assert_eq!(safe_next("/training/local/3"), "/training/local/3");
        for bad in ["//evil.example", "https://evil.example", "evil", "/\\evil.example", "/x?u=http://e", "/\t/evil.example", "/\n/evil.example", "/ /evil", "/\u{7f}/x"] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }

    #[test]
    fn the_form_escapes_what_it_echoes() {
        let html = render("tok", "/x\"><script>", Some("<b>no</b>"), false);
        assert!(!html.contains("<script>") && !html.contains("<b>no"), "{html}");
        assert!(html.contains(r#"name="csrf" value="tok""#));
    }
}
