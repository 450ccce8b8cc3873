//! The guard every request passes through, in this order: security headers
//! on the way out; the route's body limit; who is asking (session cookie, API
//! token, or the open console); whether their role may call the route; for a
//! state-changing browser request, the origin and the CSRF token. Refusals of
//! routes that change state are journaled.
//!
//! The decisions are small pure functions ([`classify`], [`check_origin`],
//! [`body_limit`]) with tests beside them; [`guard`] wires them to axum.

use super::Auth;
use crate::journal::{self, Change};
use app::auth::{server_fn_role, Principal, Role};
use app::ApiError;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "sagedeck_session";
pub const CSRF_COOKIE: &str = "sagedeck_csrf";
pub const CSRF_HEADER: &str = "x-sagedeck-csrf";

/// What a route is, for the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The login page and form, health, the built site's files.
    Public,
    /// A page: any signed-in user may read it.
    Page,
    /// A server function and the role it needs.
    ServerFn(Role),
    /// Not a registered server function: refused to everyone.
    UnknownServerFn,
    /// An endpoint or function invocation (SageMaker's and Lambda's routes).
    Invoke,
}

impl Access {
    /// The role a request needs, or `None` for public routes.
    pub fn needs(self) -> Option<Role> {
        match self {
            Access::Public => None,
            Access::Page => Some(Role::Viewer),
            Access::ServerFn(r) => Some(r),
            Access::UnknownServerFn => Some(Role::Admin),
            Access::Invoke => Some(Role::Operator),
        }
    }

    /// Whether a refusal is an attempted change worth journaling.
    pub fn mutates(self) -> bool {
        matches!(self, Access::ServerFn(Role::Operator | Role::Admin) | Access::UnknownServerFn)
    }
}

pub fn classify(method: &Method, path: &str) -> Access {
    if path == "/healthz" || path == "/login" || path == "/auth/login" || path.starts_with("/pkg/") {
        return Access::Public;
    }
    if path.starts_with("/api/") {
        return server_fn_role(path).map(Access::ServerFn).unwrap_or(Access::UnknownServerFn);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let invoke = matches!(
        segments.as_slice(),
        ["endpoints", _, "invocations"]
            | ["aws", "endpoints", _, "invocations"]
            | ["functions", _, "invocations"]
            | ["2015-03-31", "functions", _, "invocations"]
    );
    if invoke {
        return Access::Invoke;
    }
    let is_read = matches!(*method, Method::GET | Method::HEAD);
    // The files of public/ (favicon) and the site's assets.
    let asset = segments.len() == 1
        && [".svg", ".ico", ".png", ".css", ".js", ".wasm", ".txt"].iter().any(|ext| path.ends_with(ext));
    if is_read && asset {
        Access::Public
    } else {
        Access::Page
    }
}

/// The largest body a route accepts. Invocations read their own (6 MB for
/// an image, as SageMaker) and are not limited here.
pub fn body_limit(access: Access, path: &str) -> Option<u64> {
    match access {
        Access::Invoke => None,
        _ if path == "/auth/login" => Some(8 * 1024),
        // The largest server-function argument is a training or scaling form,
        // a few KB; 1 MB leaves room for a pasted policy document.
        Access::ServerFn(_) | Access::UnknownServerFn => Some(1024 * 1024),
        Access::Public | Access::Page => Some(16 * 1024),
    }
}

/// Where a state-changing request says it comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Origin {
    /// A browser on one of our own pages.
    SameOrigin,
    /// Nothing a browser would send: curl, a script.
    NotABrowser,
}

/// A browser always sends Origin (or at least Sec-Fetch-Site) on a POST; it
/// must name this console. `Origin: null` (sandboxed frames, some redirects)
/// is refused.
pub fn check_origin(headers: &HeaderMap, trust_proxy: bool) -> Result<Origin, String> {
    let host = request_host(headers, trust_proxy);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        return match origin_host {
            Some(h) if !host.is_empty() && h.eq_ignore_ascii_case(host) => Ok(Origin::SameOrigin),
            _ => Err(format!("a request from {origin} may not change this console (it answers {host}); cross-site requests are refused")),
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin") | Some("none") => Ok(Origin::SameOrigin),
        Some(other) => Err(format!("a {other} request may not change this console; cross-site requests are refused")),
        None => Ok(Origin::NotABrowser),
    }
}

/// The host the client asked for: `Host`, or `X-Forwarded-Host` when a
/// trusted proxy sets it (any client can send it otherwise).
pub fn request_host(headers: &HeaderMap, trust_proxy: bool) -> &str {
    let forwarded = if trust_proxy { headers.get("x-forwarded-host") } else { None };
    forwarded
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(',').next().unwrap_or_default().trim())
        .unwrap_or("")
}

/// A request cookie's value (the `cookie` crate parses the header; every
/// `Cookie` header is read, as HTTP/2 clients send one per cookie).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}

/// Compares without stopping at the first difference (`subtle`, whose
/// comparison the optimiser cannot turn back into an early exit; only the
/// lengths, which are public, are compared directly).
pub fn same_token(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The per-request nonce the page's scripts carry; the server functions'
/// context hands it to Leptos.
#[derive(Clone)]
pub struct CspNonce(pub String);

/// The session (hash) a request came with, for sign-out.
#[derive(Clone)]
pub struct CurrentSession(pub String);

/// Whether cookies set in answer to this request get `Secure`.
pub fn secure(auth: &Auth, headers: &HeaderMap) -> bool {
    auth.secure_cookies || (auth.trust_proxy && headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes() == b"https"))
}

/// A `Set-Cookie` for the whole console (`Path=/`, `SameSite=Lax`).
pub fn set_cookie(name: &str, value: &str, http_only: bool, secure: bool, max_age: Option<u32>) -> HeaderValue {
    let mut c = cookie::Cookie::build((name, value)).path("/").same_site(cookie::SameSite::Lax).http_only(http_only).secure(secure);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(i64::from(age)));
    }
    HeaderValue::from_str(&c.build().to_string()).expect("cookie values are base64url")
}

fn refuse(error: ApiError) -> Response {
    let status = error.http_status();
    (status, axum::Json(error)).into_response()
}

pub async fn guard(State(auth): State<Arc<Auth>>, mut req: Request<Body>, next: Next) -> Response {
    let nonce = super::users::new_token().unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let access = classify(&method, &path);
    let secure_cookies = secure(&auth, req.headers());

    let mut response = match admit(&auth, &mut req, access, &method, &path, &nonce).await {
        Ok(principal) => {
            // An open console hands every browser a CSRF cookie to echo,
            // signed with its key; one it did not sign is replaced.
            let give_csrf = principal.as_ref().is_some_and(|p| p.open) && !cookie(req.headers(), CSRF_COOKIE).is_some_and(|c| auth.csrf_is_ours(c));
            let mut res = match principal {
                Some(p) if access.mutates() && changes_state(&method) => run_change(&auth, p, req, next, body_limit(access, &path)).await,
                Some(p) => journal::acting_as(p, next.run(req)).await,
                None => next.run(req).await,
            };
            if give_csrf {
                res.headers_mut().append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &auth.new_csrf(), false, secure_cookies, None));
            }
            res
        }
        Err(res) => res,
    };
    let h = response.headers_mut();
    // 'wasm-unsafe-eval' lets the page compile its own wasm; inline scripts
    // run only with this response's nonce (Leptos puts it on the hydration
    // script). Inline style attributes are allowed: the progress bars and
    // charts set widths and colours that way. Images may come from any http(s)
    // address: the Test panel previews the image whose URL the user pasted
    // (an image cannot run code; scripts and connections stay 'self').
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob: http: https:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    );
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("nonce is base64url"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

/// The largest part of a change's request body kept with its in-flight mark.
const REQUEST_KEPT: usize = 4096;

/// Runs a state-changing request to its end, marked in flight meanwhile.
///
/// The handler runs in its own task: a caller that goes away (a closed tab,
/// a client timeout) would otherwise cancel it between an AWS call and its
/// journal entry. The mark (`requests_in_flight`) is cleared once the
/// handler has answered; if the process dies first, the next start journals
/// it as interrupted, so no change goes unrecorded.
async fn run_change(auth: &Auth, principal: Principal, req: Request<Body>, next: Next, limit: Option<u64>) -> Response {
    use futures_util::FutureExt;
    let route = format!("{} {}", req.method(), req.uri().path());
    let (parts, body) = req.into_parts();
    // The body is already limited (see `admit`); read it here to keep its
    // start with the mark.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) if too_large(&e) => return refuse(over_limit(parts.uri.path(), limit.unwrap_or_default())),
        Err(e) => return refuse(ApiError::Invalid(format!("the request body could not be read: {e}"))),
    };
    let kept = String::from_utf8_lossy(&bytes[..bytes.len().min(REQUEST_KEPT)]).into_owned();
    let journal = auth.journal.clone();
    let mark = journal.begin_request(&principal.name, &route, &kept).await;
    let req = Request::from_parts(parts, Body::from(bytes));
    let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
        let run = std::panic::AssertUnwindSafe(journal::acting_as(principal, next.run(req))).catch_unwind().await;
        match run {
            Ok(res) => {
                journal.end_request(mark).await;
                res
            }
            Err(_) => {
                journal.abandon_request(mark, "the handler stopped unexpectedly (a bug; the server log has the panic)").await;
                refuse(ApiError::Internal("this change stopped unexpectedly; it is in the journal as interrupted".into()))
            }
        }
    }));
    task.await.unwrap_or_else(|_| refuse(ApiError::Internal("this change stopped unexpectedly".into())))
}

fn over_limit(path: &str, limit: u64) -> ApiError {
    ApiError::TooLarge(format!("{path} accepts bodies up to {} KB", limit / 1024))
}

/// Whether a request may change state (anything but a read).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a body failed because it passed the route's limit.
fn too_large(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Decides about one request: `Ok(principal)` to run it (`None` for public
/// routes), `Err(response)` to refuse it.
async fn admit(
    auth: &Auth,
    req: &mut Request<Body>,
    access: Access,
    method: &Method,
    path: &str,
    nonce: &str,
) -> Result<Option<Principal>, Response> {
    req.extensions_mut().insert(CspNonce(nonce.to_string()));
    // DNS rebinding: a page reaching this console under its own name gets
    // nothing, whatever it sends. Health checks may use any name.
    if path != "/healthz" {
        let host = request_host(req.headers(), auth.trust_proxy).to_string();
        if !auth.hosts.allows(&host) {
            if access.mutates() {
                let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "unknown".into());
                record_anonymous_denial(auth, &client, &format!("{method} {path} (Host: {})", crate::journal::printable(&host, 80))).await;
            }
            crate::body::drain(std::mem::replace(req.body_mut(), Body::empty())).await;
            return Err(refuse(ApiError::AccessDenied(format!(
                "this console does not answer to the name {:?} (it answers to {}); if a proxy or DNS name leads here, start it with --public-host NAME",
                crate::journal::printable(&host, 80),
                auth.hosts.describe()
            ))));
        }
    }
    if let Some(limit) = body_limit(access, path) {
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            crate::body::drain(std::mem::replace(req.body_mut(), Body::empty())).await;
            return Err(refuse(over_limit(path, limit)));
        }
        // A body without a declared length is cut at the limit as it streams.
        let body = std::mem::replace(req.body_mut(), Body::empty());
        *req.body_mut() = Body::new(http_body_util::Limited::new(body, limit as usize));
    }
    let Some(needed) = access.needs() else { return Ok(None) };
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "unknown".into());
    let what = format!("{method} {path}");

    // Who is asking.
    let headers = req.headers().clone();
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let mut expected_csrf: Option<String> = None;
    let principal = if !auth.required().await {
        // Only a token this console signed counts.
        expected_csrf = cookie(&headers, CSRF_COOKIE).filter(|c| auth.csrf_is_ours(c)).map(str::to_string);
        Some(Principal::open())
    } else if let Some(token) = bearer {
        auth.users.token(token).await.ok().flatten()
    } else if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        match auth.users.session(token).await.ok().flatten() {
            Some(session) => {
                expected_csrf = Some(session.csrf.clone());
                req.extensions_mut().insert(CurrentSession(session.token_hash));
                Some(session.principal)
            }
            None => None,
        }
    } else {
        None
    };
    let Some(principal) = principal else {
        if access.mutates() {
            record_anonymous_denial(auth, &client, &what).await;
        }
        if access == Access::Page && *method == Method::GET {
            let next: String = path.chars().filter(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c)).collect();
            return Err((StatusCode::SEE_OTHER, [(header::LOCATION, format!("/login?next={next}"))]).into_response());
        }
        let message = if bearer.is_some() { "the API token is not valid (revoked, or its user was removed)" } else { "sign in first: this console requires a session (or an API token for programs)" };
        return Err(refuse(ApiError::Unauthenticated(message.into())));
    };

    // Cross-site requests: a browser must be on our origin and echo the
    // session's CSRF token. Bearer tokens are never sent by a browser on its
    // own, and an open console's non-browser callers are the machine itself.
    if changes_state(method) && bearer.is_none() {
        let origin = match check_origin(&headers, auth.trust_proxy) {
            Ok(o) => o,
            Err(reason) => {
                if access.mutates() {
                    record_user_denial(auth, &principal.name, &what, &reason).await;
                }
                return Err(refuse(ApiError::AccessDenied(reason)));
            }
        };
        let browser = origin == Origin::SameOrigin || headers.contains_key(header::COOKIE);
        if browser || !principal.open {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let ok = matches!((sent, expected_csrf.as_deref()), (Some(s), Some(e)) if same_token(s, e));
            if !ok {
                let reason = if sent.is_none() { "the CSRF token is missing (reload the page)" } else { "the CSRF token does not match this session (reload the page)" };
                if access.mutates() {
                    record_user_denial(auth, &principal.name, &what, reason).await;
                }
                return Err(refuse(ApiError::AccessDenied(reason.into())));
            }
        }
    }

    if access == Access::UnknownServerFn {
        return Err(refuse(ApiError::NotFound(format!("there is no server function at {path}"))));
    }
    if let Err(e) = principal.require(needed, &what) {
        if access.mutates() || access == Access::Invoke {
            record_user_denial(auth, &principal.name, &what, e.message()).await;
        }
        return Err(refuse(e));
    }
    req.extensions_mut().insert(principal.clone());
    Ok(Some(principal))
}

/// How many refusals of callers who are not signed in are journaled per
/// address and minute: enough to see an attack, not enough to fill the disk.
pub const ANONYMOUS_DENIALS_JOURNALED: usize = 60;

/// The network an address belongs to, for counting refusals: every
/// loopback address is one machine, IPv4 by /24, IPv6 by /64 (a client
/// rotating through 127.0.0.2, 127.0.0.3… or its /64 is still one client).
pub fn network_of(client: &str) -> String {
    match client.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => "loopback".into(),
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => client.to_string(),
    }
}

/// A refused request of a signed-in user: journaled unless that user has
/// used up their entries for the minute (a viewer looping on refused calls
/// cannot fill the journal either); the last entry says so.
async fn record_user_denial(auth: &Auth, who: &str, what: &str, reason: &str) {
    let key = [format!("user:{who}")];
    let last = {
        let mut window = auth.user_denials.lock().expect("denial window");
        let now = std::time::Instant::now();
        if window.check(&key, now).is_err() {
            tracing::warn!(who, what, reason, "refused; not journaled: this user reached their entries for the minute");
            return;
        }
        window.failed(&key, now);
        window.check(&key, now).is_err()
    };
    let reason = if last {
        format!("{reason}; further refusals of {who} are not journaled for a minute (the server log has them)")
    } else {
        reason.to_string()
    };
    record_denial(auth, who, what, &reason).await;
}

/// A refused request without a session, journaled as "anonymous (ADDRESS)"
/// unless that address's network has used up its entries for the minute;
/// the last entry it gets says so.
async fn record_anonymous_denial(auth: &Auth, client: &str, what: &str) {
    let key = [format!("net:{}", network_of(client))];
    let last = {
        let mut window = auth.anonymous_denials.lock().expect("denial window");
        let now = std::time::Instant::now();
        if window.check(&key, now).is_err() {
            tracing::warn!(client, what, "refused (not signed in); not journaled: this address reached its entries for the minute");
            return;
        }
        window.failed(&key, now);
        window.check(&key, now).is_err()
    };
    let reason = if last {
        format!("not signed in; further refusals from {client} are not journaled for a minute (the server log has them)")
    } else {
        "not signed in".to_string()
    };
    record_denial(auth, &format!("anonymous ({client})"), what, &reason).await;
}

/// Refused attempts to change something are journaled under the name of who
/// tried (or "anonymous" and the address).
async fn record_denial(auth: &Auth, who: &str, what: &str, reason: &str) {
    let actor = Principal { name: who.to_string(), role: Role::Viewer, open: false };
    journal::acting_as(actor, auth.journal.record(Change {
        backend: "local",
        action: "auth.denied",
        target: what,
        before: None,
        after: None,
        outcome: Err(reason.to_string()),
    }))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(classify(&get, "/healthz"), Access::Public);
        assert_eq!(classify(&get, "/pkg/sagedeck.wasm"), Access::Public);
        assert_eq!(classify(&get, "/favicon.svg"), Access::Public);
        assert_eq!(classify(&post, "/auth/login"), Access::Public);
        assert_eq!(classify(&get, "/training/local/3"), Access::Page);
        assert_eq!(classify(&get, "/evil.svg/../iam"), Access::Page);
        assert_eq!(classify(&post, "/api/notebooks/stop"), Access::ServerFn(Role::Operator));
        assert_eq!(classify(&post, "/api/iam/fix/apply"), Access::ServerFn(Role::Admin));
        assert_eq!(classify(&post, "/api/made/up"), Access::UnknownServerFn);
        assert_eq!(classify(&post, "/endpoints/shapes/invocations"), Access::Invoke);
        assert_eq!(classify(&post, "/2015-03-31/functions/f/invocations"), Access::Invoke);
        assert_eq!(classify(&post, "/endpoints/shapes"), Access::Page);
        assert!(Access::ServerFn(Role::Operator).mutates() && !Access::ServerFn(Role::Viewer).mutates());
    }

    #[test]
    fn every_registered_server_function_has_a_role() {
        let paths: Vec<&str> = leptos::server_fn::axum::server_fn_paths().map(|(p, _)| p).collect();
        assert!(paths.len() >= 50, "only {} server functions registered: {paths:?}", paths.len());
        for path in &paths {
            assert!(server_fn_role(path).is_some(), "{path} is not in app::auth::SERVER_FN_ROLES, so everyone is refused");
        }
        // And the table names nothing that does not exist.
        for (endpoint, _) in app::auth::SERVER_FN_ROLES {
            assert!(paths.contains(&format!("/api/{endpoint}").as_str()), "{endpoint} is in the table but not a server function");
        }
    }

    #[test]
    fn body_limits_per_route() {
        assert_eq!(body_limit(Access::Invoke, "/endpoints/x/invocations"), None);
        assert_eq!(body_limit(Access::Public, "/auth/login"), Some(8192));
        assert_eq!(body_limit(Access::ServerFn(Role::Viewer), "/api/x"), Some(1 << 20));
        assert_eq!(body_limit(Access::Page, "/"), Some(16384));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_are_checked_against_the_host() {
        let ok = headers(&[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000")]);
        assert_eq!(check_origin(&ok, false), Ok(Origin::SameOrigin));
        let evil = headers(&[("host", "127.0.0.1:3000"), ("origin", "https://evil.example")]);
        assert!(check_origin(&evil, false).unwrap_err().contains("evil.example"));
        let null = headers(&[("host", "127.0.0.1:3000"), ("origin", "null")]);
        assert!(check_origin(&null, false).is_err());
        let lookalike = headers(&[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000.evil.example")]);
        assert!(check_origin(&lookalike, false).is_err());
        let cross = headers(&[("host", "h"), ("sec-fetch-site", "cross-site")]);
        assert!(check_origin(&cross, false).is_err());
        assert_eq!(check_origin(&headers(&[("host", "h"), ("sec-fetch-site", "same-origin")]), false), Ok(Origin::SameOrigin));
        assert_eq!(check_origin(&headers(&[("host", "h")]), false), Ok(Origin::NotABrowser));
        // X-Forwarded-Host moves the origin only behind a trusted proxy.
        let forwarded = headers(&[("host", "127.0.0.1:3000"), ("x-forwarded-host", "evil.example"), ("origin", "http://evil.example")]);
        assert!(check_origin(&forwarded, false).is_err());
        assert_eq!(check_origin(&forwarded, true), Ok(Origin::SameOrigin));
        assert_eq!(request_host(&forwarded, false), "127.0.0.1:3000");
    }

    #[test]
    fn refusals_are_counted_per_network() {
        assert_eq!(network_of("127.0.0.2"), "loopback");
        assert_eq!(network_of("127.45.3.9"), network_of("::1"));
        assert_eq!(network_of("203.0.113.7"), "203.0.113.0/24");
        assert_eq!(network_of("203.0.113.200"), network_of("203.0.113.7"));
        assert_ne!(network_of("203.0.114.7"), network_of("203.0.113.7"));
        assert_eq!(network_of("2001:db8:1:2:aa::1"), "2001:db8:1:2::/64");
    }

    #[test]
    fn cookies_and_tokens() {
        let h = headers(&[("cookie", "a=1; sagedeck_csrf=tok; b=2"), ("cookie", "sagedeck_session=s")]);
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("s"));
        assert_eq!(cookie(&h, "missing"), None);
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("abc", "ab"));
        let c = set_cookie(SESSION_COOKIE, "v", true, true, Some(60));
        let parsed = cookie::Cookie::parse(c.to_str().unwrap()).unwrap();
        assert_eq!((parsed.name(), parsed.value(), parsed.path()), (SESSION_COOKIE, "v", Some("/")), "{c:?}");
        assert_eq!(parsed.same_site(), Some(cookie::SameSite::Lax));
        assert_eq!((parsed.http_only(), parsed.secure()), (Some(true), Some(true)));
        assert_eq!(parsed.max_age(), Some(cookie::time::Duration::seconds(60)));
        let plain = cookie::Cookie::parse(set_cookie(CSRF_COOKIE, "t", false, false, None).to_str().unwrap().to_string()).unwrap();
        assert_eq!((plain.http_only(), plain.secure(), plain.max_age()), (None, None, None), "no flag that was not asked for");
    }
}
