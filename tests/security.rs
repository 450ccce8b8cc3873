//! The console's own safety, attacked over HTTP: a scripted attack set
//! (unauthenticated calls to every mutating route, a viewer calling operator
//! routes, cross-site posts, forged and missing CSRF tokens, oversized bodies,
//! path traversal, SSRF targets), sign-in itself (rate limit, sign-out, a new
//! password), the refusal to listen beyond loopback without users, and the
//! security headers.

use app::auth::{Role, SERVER_FN_ROLES};
use sagedeck_tests::*;
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

/// The connection-cap test needs the cores to itself: it holds 320
/// connections that a server starved of CPU (the other tests here hash
/// passwords and flood) may not accept within the 2 s header deadline, and
/// the cap is then never reached. It takes this lock for writing; the others
/// take it for reading, so they still run beside each other.
static QUIET: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Counts attacks and keeps the ones that got through.
#[derive(Default)]
struct Tally {
    sent: usize,
    by_kind: Vec<(&'static str, usize)>,
    through: Vec<String>,
}

impl Tally {
    fn expect(&mut self, kind: &'static str, what: &str, status: u16, allowed: &[u16], body: &str) {
        self.sent += 1;
        match self.by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.by_kind.push((kind, 1)),
        }
        if !allowed.contains(&status) {
            self.through.push(format!("[{kind}] {what}: HTTP {status} {}", body.chars().take(200).collect::<String>()));
        }
    }
}

fn mutating() -> Vec<(&'static str, Role)> {
    SERVER_FN_ROLES.iter().copied().filter(|(_, r)| *r >= Role::Operator).collect()
}

const INVOKE_ROUTES: &[&str] = &[
    "/endpoints/shapes/invocations",
    "/aws/endpoints/shapes/invocations",
    "/functions/f/invocations",
    "/2015-03-31/functions/f/invocations",
];

/// A request written by hand, so that nothing normalises its path.
fn raw_http(url: &str, request_line: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{request_line}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[tokio::test]
async fn the_attack_set_is_refused_every_time() {
    let _cores = QUIET.read().await;
    let app = App::spawn_with_users(AwsSetup::None, &["--allow-url-fetch"]);
    let operator = app.sign_in("operator", PASSWORD).await.expect("operator signs in");
    let viewer = app.sign_in("viewer", PASSWORD).await.expect("viewer signs in");
    let origin = app.url.clone();

    // A real endpoint to aim invocations and the URL fetcher at.
    app.use_session(Some(operator.clone()));
    let (job, data) = app.completed_small_job().await;
    app.deploy_local_endpoint("shapes", job, 4, 0, 8).await;
    app.use_session(None);
    let (_, _, before) = app.raw("POST", "/api/journal/recent", &[("cookie", &operator.cookie), ("x-sagedeck-csrf", &operator.csrf), ("origin", &origin), ("content-type", "application/x-www-form-urlencoded")], b"limit=500".to_vec()).await;
    let changes_before: Vec<Value> = serde_json::from_str(&before).unwrap();
    let ok_before = changes_before.iter().filter(|c| c["outcome"] == "ok").count();

    let mut t = Tally::default();
    let form = [("content-type", "application/x-www-form-urlencoded")];

    // 1. No session at all: every mutating server function, every invoke route.
    for (endpoint, _) in mutating() {
        let (s, _, b) = app.raw("POST", &format!("/api/{endpoint}"), &form, b"name=x".to_vec()).await;
        t.expect("unauthenticated", endpoint, s, &[401], &b);
    }
    for path in INVOKE_ROUTES {
        let (s, _, b) = app.raw("POST", path, &[("content-type", "image/jpeg")], vec![0xff, 0xd8]).await;
        t.expect("unauthenticated", path, s, &[401], &b);
    }
    let (s, _, b) = app.raw("POST", "/api/not/a/function", &form, vec![]).await;
    t.expect("unauthenticated", "unknown server fn", s, &[401], &b);
    // A page redirects to the sign-in form instead of rendering.
    let (s, _, b) = app.raw("GET", "/iam", &[], vec![]).await;
    t.expect("unauthenticated", "GET /iam", s, &[303], &b);
    // A forged session cookie and a forged API token are nobody.
    let (s, _, b) = app.raw("POST", "/api/notebooks/stop", &[("cookie", "sagedeck_session=forged"), ("content-type", form[0].1)], b"name=x".to_vec()).await;
    t.expect("unauthenticated", "forged session cookie", s, &[401], &b);
    let (s, _, b) = app.raw("POST", "/api/notebooks/stop", &[("authorization", "Bearer sd_forged"), ("content-type", form[0].1)], b"name=x".to_vec()).await;
    t.expect("unauthenticated", "forged API token", s, &[401], &b);

    // 2. A viewer calling every operator and admin route; an operator calling admin routes.
    let as_session = |s: &Session| vec![("cookie", s.cookie.clone()), ("x-sagedeck-csrf", s.csrf.clone()), ("origin", origin.clone())];
    for (endpoint, _) in mutating() {
        let mut h: Vec<(&str, String)> = as_session(&viewer);
        h.push(("content-type", form[0].1.to_string()));
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, _, b) = app.raw("POST", &format!("/api/{endpoint}"), &h, b"name=x".to_vec()).await;
        t.expect("viewer → operator route", endpoint, s, &[403], &b);
    }
    for path in INVOKE_ROUTES {
        let h = as_session(&viewer);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, _, b) = app.raw("POST", path, &h, vec![1, 2, 3]).await;
        t.expect("viewer → operator route", path, s, &[403], &b);
    }
    for (endpoint, _) in SERVER_FN_ROLES.iter().filter(|(_, r)| *r == Role::Admin) {
        let h = as_session(&operator);
        let mut h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.push(("content-type", "application/json"));
        let (s, _, b) = app.raw("POST", &format!("/api/{endpoint}"), &h, b"{}".to_vec()).await;
        t.expect("operator → admin route", endpoint, s, &[403], &b);
    }

    // 3. Cross-site posts with the operator's cookie (what a form on another
    // site would send), 4. forged and 5. missing CSRF tokens, same origin.
    for (endpoint, _) in mutating() {
        let path = format!("/api/{endpoint}");
        for (kind, extra) in [
            ("cross-site form post", vec![("origin", "https://evil.example"), ("x-sagedeck-csrf", operator.csrf.as_str())]),
            ("cross-site form post", vec![("origin", "null")]),
            ("cross-site form post", vec![("sec-fetch-site", "cross-site")]),
            ("forged CSRF token", vec![("origin", origin.as_str()), ("x-sagedeck-csrf", viewer.csrf.as_str())]),
            ("missing CSRF token", vec![("origin", origin.as_str())]),
        ] {
            let mut h = vec![("cookie", operator.cookie.as_str()), ("content-type", form[0].1)];
            h.extend(extra);
            let (s, _, b) = app.raw("POST", &path, &h, b"name=x".to_vec()).await;
            t.expect(kind, endpoint, s, &[403], &b);
        }
    }
    // The sign-in form too: from another site, or without its CSRF cookie.
    let (s, _, b) = app.raw("POST", "/auth/login", &[("origin", "https://evil.example"), ("cookie", "sagedeck_csrf=a"), ("content-type", form[0].1)], form_encode(&[("name", "operator"), ("password", PASSWORD), ("csrf", "a")]).into_bytes()).await;
    t.expect("cross-site form post", "/auth/login", s, &[403], &b);
    let (s, _, b) = app.raw("POST", "/auth/login", &[("origin", &origin), ("content-type", form[0].1)], form_encode(&[("name", "operator"), ("password", PASSWORD), ("csrf", "a")]).into_bytes()).await;
    t.expect("missing CSRF token", "/auth/login", s, &[403], &b);

    // 6. Oversized bodies.
    let op = as_session(&operator);
    let op: Vec<(&str, &str)> = op.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let with = |extra: (&'static str, &'static str)| {
        let mut h = op.clone();
        h.push(extra);
        h
    };
    let (s, _, b) = app.raw("POST", "/api/scaling/put", &with(("content-type", "application/json")), vec![b' '; 2 << 20]).await;
    t.expect("oversized body", "2 MB to a server function", s, &[413], &b);
    let (s, _, b) = app.raw("POST", "/auth/login", &[("origin", &origin), ("content-type", form[0].1)], vec![b'a'; 20_000]).await;
    t.expect("oversized body", "20 KB to the sign-in form", s, &[413], &b);
    let (s, _, b) = app.raw("POST", "/endpoints/shapes/invocations", &with(("content-type", "image/jpeg")), vec![0u8; 7_000_000]).await;
    t.expect("oversized body", "7 MB image", s, &[413], &b);
    let (s, _, b) = app.raw("POST", "/functions/f/invocations", &with(("content-type", "application/json")), vec![b' '; 7_000_000]).await;
    t.expect("oversized body", "7 MB function payload", s, &[413], &b);
    let (s, _, b) = app.raw("GET", "/", &[("content-type", "text/plain")], vec![b'x'; 100_000]).await;
    t.expect("oversized body", "100 KB to a page", s, &[413], &b);
    {
        // A body with no declared length is cut as it streams.
        let addr = origin.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            stream,
            "POST /api/scaling/put HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nX-Sagedeck-Csrf: {}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            operator.cookie, operator.csrf
        )
        .unwrap();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..40 {
            if write!(stream, "{:x}\r\n", chunk.len()).is_err() || stream.write_all(&chunk).is_err() || stream.write_all(b"\r\n").is_err() {
                break; // the server answered and closed early: fine
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status: u16 = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        t.expect("oversized body", "2.5 MB chunked, no length", status, &[400, 413], &answer);
    }

    // 7. Path traversal in dataset, test-bench and weights paths.
    let data_dir = app.data_path().display().to_string();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), app.data_path().join("escape")).unwrap();
    let traversals = [
        "../../../../etc".to_string(),
        "/etc".to_string(),
        format!("{data_dir}/../../etc"),
        format!("{data_dir}/escape"),
        format!("{data_dir}/small-demo/../../../etc"),
        outside.path().display().to_string(),
    ];
    for path in &traversals {
        let (s, b) = app_call(&app, &operator, "training/datasets/check", &[("path", path)]).await;
        t.expect("path traversal", &format!("dataset check {path}"), s, &[400], &b.to_string());
        let spec = json!({ "spec": { "name": "escape", "dataset": path, "architecture": "resnet18", "image_size": 32, "epochs": 1,
            "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
            "backbone_weights": null, "freeze_backbone": false, "seed": 1 } });
        let (s, b) = app_call_json(&app, &operator, "training/local/create", &spec).await;
        t.expect("path traversal", &format!("training dataset {path}"), s, &[400], &b.to_string());
        let (s, b) = app_call(&app, &operator, "endpoints/testbench", &[("backend", "Local"), ("name", "shapes"), ("folder", path), ("limit", "5")]).await;
        t.expect("path traversal", &format!("test bench {path}"), s, &[400], &b.to_string());
    }
    for weights in ["/etc/passwd", "../../etc/passwd", &format!("{data_dir}/escape/w.safetensors")] {
        let spec = json!({ "spec": { "name": "weights", "dataset": data.display().to_string(), "architecture": "resnet18", "image_size": 32, "epochs": 1,
            "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
            "backbone_weights": weights, "freeze_backbone": false, "seed": 1 } });
        let (s, b) = app_call_json(&app, &operator, "training/local/create", &spec).await;
        t.expect("path traversal", &format!("backbone weights {weights}"), s, &[400], &b.to_string());
    }
    for line in ["GET /pkg/../../Cargo.toml HTTP/1.1", "GET /pkg/%2e%2e/%2e%2e/Cargo.toml HTTP/1.1", "GET /pkg/..%2f..%2fCargo.toml HTTP/1.1"] {
        let answer = raw_http(&origin, line);
        let status: u16 = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let leaked = answer.contains("[workspace]");
        t.expect("path traversal", line, if leaked { 200 } else { status }, &[400, 404, 303], &answer);
    }

    // 8. SSRF: the URL fetcher (turned on here) refuses every private target.
    for url in [
        "http://127.0.0.1:1/x.jpg",
        "http://localhost/x.jpg",
        "http://2130706433/x.jpg",
        "http://0.0.0.0/x.jpg",
        "http://10.0.0.1/x.jpg",
        "http://172.16.0.1/x.jpg",
        "http://192.168.1.1/x.jpg",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://100.64.0.1/x.jpg",
        "http://[::1]/x.jpg",
        "http://[fd00::1]/x.jpg",
        "http://[fe80::1]/x.jpg",
        "http://[::ffff:127.0.0.1]/x.jpg",
        "file:///etc/passwd",
        "gopher://127.0.0.1:25/",
        &format!("{origin}/healthz"),
    ] {
        let body = json!({ "url": url }).to_string().into_bytes();
        let (s, _, b) = app.raw("POST", "/endpoints/shapes/invocations", &with(("content-type", "application/json")), body).await;
        // Refused by the fetcher, answered as SageMaker answers a body the model refuses.
        t.expect("SSRF target", url, s, &[424], &b);
        assert!(b.contains("\"OriginalStatusCode\":400"), "{url}: {b}");
    }

    for (kind, n) in &t.by_kind {
        eprintln!("attack set: {kind}: {n}");
    }
    eprintln!("attack set: {} requests, {} refused", t.sent, t.sent - t.through.len());
    assert!(t.through.is_empty(), "{} of {} attacks got through:\n{}", t.through.len(), t.sent, t.through.join("\n"));
    assert!(t.sent >= 200, "the attack set shrank to {}", t.sent);

    // Nothing changed, and the refused attempts to change things are journaled.
    let (_, _, after) = app.raw("POST", "/api/journal/recent", &with(("content-type", "application/x-www-form-urlencoded")), b"limit=500".to_vec()).await;
    let changes: Vec<Value> = serde_json::from_str(&after).unwrap();
    let ok_after = changes.iter().filter(|c| c["outcome"] == "ok").count();
    assert_eq!(ok_after, ok_before, "an attack changed something: {:#?}", &changes[..5.min(changes.len())]);
    // Refusals are journaled up to 60 a minute per user and per network
    // (the rest go to the server log), so an attacker cannot grow the journal.
    let mut per_actor: std::collections::BTreeMap<String, usize> = Default::default();
    for c in changes.iter().filter(|c| c["action"] == "auth.denied") {
        *per_actor.entry(c["actor"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let denials: usize = per_actor.values().sum();
    assert!(denials >= 100, "only {denials} refusals were journaled: {per_actor:?}");
    assert!(per_actor.values().all(|n| *n <= 60), "{per_actor:?}");
    assert!(
        changes.iter().any(|c| c["action"] == "auth.denied" && c["message"].as_str().unwrap_or_default().contains("not journaled for a minute")),
        "an actor over the cap is told so in its last entry: {per_actor:?}"
    );
    assert!(changes.iter().any(|c| c["action"] == "auth.denied" && c["actor"] == "viewer"), "the viewer's attempts name the viewer");
    assert!(changes.iter().any(|c| c["action"] == "auth.denied" && c["actor"].as_str().unwrap().starts_with("anonymous (127.0.0.1)")));
    let (_, _, jobs) = app.raw("POST", "/api/training/local/list", &with(("content-type", "application/x-www-form-urlencoded")), vec![]).await;
    assert_eq!(serde_json::from_str::<Value>(&jobs).unwrap().as_array().unwrap().len(), 1, "only the setup's job exists");
}

async fn app_call(app: &App, session: &Session, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
    app.use_session(Some(session.clone()));
    let answer = app.call(endpoint, form).await;
    app.use_session(None);
    answer
}

async fn app_call_json(app: &App, session: &Session, endpoint: &str, body: &Value) -> (u16, Value) {
    app.use_session(Some(session.clone()));
    let answer = app.call_json(endpoint, body).await;
    app.use_session(None);
    answer
}

#[tokio::test]
async fn sign_in_is_rate_limited_and_sessions_end() {
    let _cores = QUIET.read().await;
    let app = App::spawn_with_users(AwsSetup::None, &[]);
    // Five wrong passwords, then even the right one waits.
    for _ in 0..5 {
        let (status, page) = app.sign_in("operator", "not the password").await.unwrap_err();
        assert_eq!(status, 401);
        assert!(page.contains("Wrong user name or password"), "{page}");
    }
    let (status, page) = app.sign_in("operator", PASSWORD).await.unwrap_err();
    assert_eq!(status, 429, "{page}");
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    // A wrong name takes a try from the same address too (no user enumeration by status).
    let (status, _) = app.sign_in("nobody", "whatever at all").await.unwrap_err();
    assert_eq!(status, 429);

    // Another user from a fresh console is unaffected; sign-out ends the session.
    let app = App::spawn_with_users(AwsSetup::None, &[]);
    let admin = app.sign_in("admin", PASSWORD).await.unwrap();
    app.use_session(Some(admin.clone()));
    let (code, me) = app.call("auth/whoami", &[]).await;
    assert_eq!((code, me["name"].as_str(), me["role"].as_str()), (200, Some("admin"), Some("admin")));
    let (code, _) = app.call("auth/logout", &[]).await;
    assert_eq!(code, 200);
    let (code, err) = app.call("auth/whoami", &[]).await;
    assert_eq!(code, 401, "{err}");

    // A new password (from the command line) ends the user's sessions.
    let operator = app.sign_in("operator", PASSWORD).await.unwrap();
    app.use_session(Some(operator));
    assert_eq!(app.call("auth/whoami", &[]).await.0, 200);
    let mut passwd = std::process::Command::new(server_binary())
        .args(["user", "passwd", "operator", "--data-dir"])
        .arg(app.data_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    passwd.stdin.take().unwrap().write_all(b"another long password\n").unwrap();
    assert!(passwd.wait().unwrap().success());
    assert_eq!(app.call("auth/whoami", &[]).await.0, 401);
    assert!(app.sign_in("operator", "another long password").await.is_ok());

    // An API token acts with its user's role, needs no CSRF token, and the
    // journal names its user.
    let out = sagedeck_cli(&["user", "token", "viewer", "--data-dir", app.data_path().to_str().unwrap()]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let bearer = format!("Bearer {token}");
    let (s, _, b) = app.raw("POST", "/api/auth/whoami", &[("authorization", &bearer)], vec![]).await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = app.raw("POST", "/api/training/datasets/demo", &[("authorization", &bearer)], vec![]).await;
    assert_eq!(s, 403, "{b}");
    let admin = app.sign_in("admin", PASSWORD).await.unwrap();
    app.use_session(Some(admin));
    let (_, journal) = app.call_json("journal/search", &json!({ "query": { "action": "auth.", "limit": 50 } })).await;
    let actions: Vec<(String, String, String)> = journal
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap().into(), c["actor"].as_str().unwrap().into(), c["outcome"].as_str().unwrap().into()))
        .collect();
    assert!(actions.contains(&("auth.login".into(), "admin".into(), "ok".into())), "{actions:?}");
    assert!(actions.contains(&("auth.logout".into(), "admin".into(), "ok".into())), "{actions:?}");
    assert!(actions.contains(&("auth.denied".into(), "viewer".into(), "failed".into())), "{actions:?}");
    let (_, cli) = app.call_json("journal/search", &json!({ "query": { "action": "user.", "limit": 50 } })).await;
    assert!(cli.as_array().unwrap().iter().any(|c| c["action"] == "user.passwd" && c["actor"].as_str().unwrap().ends_with("(command line)")), "{cli}");
}

#[tokio::test]
async fn it_will_not_listen_beyond_loopback_without_users() {
    let _cores = QUIET.read().await;
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(server_binary())
        .args(["--bind", "0.0.0.0:0", "--aws", "off", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0:0 without sign-in") && err.contains("sagedeck user add"), "{err}");

    // With a user it starts, and everything but the sign-in page needs a session.
    add_user(dir.path(), "admin", "admin");
    let app = App::spawn_in(dir, AwsSetup::None, &["--bind", "0.0.0.0:0"]);
    let port = app.url.rsplit(':').next().unwrap().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = client.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 303);
    assert_eq!(page.headers()["location"], "/login?next=/");
    assert_eq!(client.get(format!("{url}/login")).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(client.get(format!("{url}/healthz")).send().await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn an_open_console_says_so_and_still_checks_origins() {
    let _cores = QUIET.read().await;
    let app = App::spawn(AwsSetup::None);
    let (code, me) = app.call("auth/whoami", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(me["open"], true);
    assert_eq!(me["name"], "local");

    // Headers on pages and API answers alike.
    let (status, headers, page) = app.raw("GET", "/", &[], vec![]).await;
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'") && !csp.contains(" 'unsafe-eval'"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(page.contains(&format!("nonce=\"{nonce}\"")), "the page's scripts carry this response's nonce");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let csrf = set_cookies(&headers).into_iter().find(|(k, _)| k == "sagedeck_csrf").expect("an open console hands out a CSRF cookie").1;

    // A browser on another site is refused; the same browser on our page passes.
    let cookie = format!("sagedeck_csrf={csrf}");
    let (s, h, b) = app.raw("POST", "/api/training/datasets/demo", &[("origin", "https://evil.example"), ("cookie", &cookie), ("x-sagedeck-csrf", &csrf)], vec![]).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let (s, _, b) = app.raw("POST", "/api/auth/whoami", &[("origin", &app.url), ("cookie", &cookie)], vec![]).await;
    assert_eq!(s, 403, "same origin but no token: {b}");
    let (s, _, b) = app.raw("POST", "/api/auth/whoami", &[("origin", &app.url), ("cookie", &cookie), ("x-sagedeck-csrf", &csrf)], vec![]).await;
    assert_eq!(s, 200, "{b}");
    // curl on the machine itself (no browser headers, no cookies) works, as before.
    let (s, _, b) = app.raw("POST", "/api/auth/whoami", &[], vec![]).await;
    assert_eq!(s, 200, "{b}");
}

/// A flood of requests without a session is refused every time, but only the
/// first 60 a minute from one address reach the journal; the last of them
/// says so.
#[tokio::test]
async fn a_flood_of_anonymous_refusals_does_not_grow_the_journal_without_bound() {
    let _cores = QUIET.read().await;
    let app = App::spawn_with_users(AwsSetup::None, &[]);
    let http = reqwest::Client::new();
    for _ in 0..150 {
        let res = http.post(format!("{}/api/notebooks/stop", app.url)).form(&[("name", "nb-1")]).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    let admin = app.sign_in("admin", PASSWORD).await.unwrap();
    app.use_session(Some(admin));
    let (_, journal) = app.call("journal/recent", &[("limit", "500")]).await;
    let anonymous: Vec<&Value> =
        journal.as_array().unwrap().iter().filter(|e| e["action"] == "auth.denied" && e["actor"] == "anonymous (127.0.0.1)").collect();
    assert_eq!(anonymous.len(), 60, "{journal:#}");
    assert!(anonymous[0]["message"].as_str().unwrap().contains("not journaled for a minute"), "{}", anonymous[0]);
    assert_eq!(anonymous[1]["message"], "not signed in");
}

// ---------------------------------------------------------------------------
// Hostile clients and hostile files (issue 18). Each class is attacked with
// several variants; the server must refuse or bound each, stay up (/healthz
// polled throughout), change nothing, and keep the journal bounded. Peak
// memory is the server's own VmHWM, read before and after.

/// /healthz polled every 100 ms while an attack runs.
struct HealthWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(usize, usize, Duration)>,
}

impl HealthWatch {
    fn start(url: &str) -> HealthWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, url) = (stop.clone(), format!("{url}/healthz"));
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
            let (mut ok, mut failed, mut slowest) = (0, 0, Duration::ZERO);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    _ => failed += 1,
                }
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (ok, failed, slowest)
        });
        HealthWatch { stop, task }
    }

    /// (answered, failed, slowest answer)
    async fn finish(self) -> (usize, usize, Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// A client whose connections come from `source` (any 127.x address works
/// on Linux): another machine, as far as the server can tell.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn ok_changes(journal: &Value) -> usize {
    journal.as_array().unwrap().iter().filter(|c| c["outcome"] == "ok").count()
}

#[tokio::test]
async fn dns_rebinding_forged_tokens_and_forwarded_hosts_change_nothing() {
    let _cores = QUIET.read().await;
    let app = App::spawn_with(AwsSetup::None, &["--public-host", "console.test"]);
    let health = HealthWatch::start(&app.url);
    let port = app.url.rsplit(':').next().unwrap().to_string();
    let (_, journal) = app.call("journal/recent", &[("limit", "100")]).await;
    let ok_before = ok_changes(&journal);
    // A real token, as a rebinding page could have fetched it under its own name.
    let (_, headers, _) = app.raw("GET", "/", &[], vec![]).await;
    let csrf = set_cookies(&headers).into_iter().find(|(k, _)| k == "sagedeck_csrf").unwrap().1;
    let cookie = format!("sagedeck_csrf={csrf}");
    let mut t = Tally::default();
    for host in ["evil.example", "127.0.0.1.nip.io", "localhost.evil.example", "console.test.evil.example", "sagedeck"] {
        let h = format!("{host}:{port}");
        let origin = format!("http://{h}");
        let (s, _, b) = app.raw("GET", "/", &[("host", &h)], vec![]).await;
        t.expect("rebinding: page", &h, s, &[403], &b);
        assert!(s != 403 || b.contains("--public-host"), "{b}");
        let (s, _, b) = app
            .raw("POST", "/api/training/datasets/demo", &[("host", &h), ("origin", &origin), ("cookie", &cookie), ("x-sagedeck-csrf", &csrf)], vec![])
            .await;
        t.expect("rebinding: server function with a real token", &h, s, &[403], &b);
        let (s, _, b) = app.raw("POST", "/endpoints/shapes/invocations", &[("host", &h), ("content-type", "image/png")], b"x".to_vec()).await;
        t.expect("rebinding: invocation", &h, s, &[403], &b);
    }
    // A forwarded host from a client that is not a trusted proxy moves nothing.
    let (s, _, b) = app
        .raw("POST", "/api/training/datasets/demo", &[("x-forwarded-host", "evil.example"), ("origin", "http://evil.example"), ("cookie", &cookie), ("x-sagedeck-csrf", &csrf)], vec![])
        .await;
    t.expect("X-Forwarded-Host spoof", "evil.example", s, &[403], &b);
    // Tokens the console did not sign: made up, or a cookie planted by a neighbour.
    for forged in ["abc", "abc.0123456789abcdef0123456789abcdef", &format!("{}x", csrf)] {
        let c = format!("sagedeck_csrf={forged}");
        let (s, _, b) = app.raw("POST", "/api/training/datasets/demo", &[("origin", &app.url), ("cookie", &c), ("x-sagedeck-csrf", forged)], vec![]).await;
        t.expect("forged CSRF token", forged, s, &[403], &b);
    }
    assert!(t.through.is_empty(), "{} of {} got through:\n{}", t.through.len(), t.sent, t.through.join("\n"));
    // The console's own names work: localhost, a configured name, and its address with the signed token.
    for host in [format!("localhost:{port}"), format!("console.test:{port}"), format!("127.0.0.1:{port}")] {
        let (s, _, b) = app.raw("POST", "/api/auth/whoami", &[("host", &host), ("origin", &format!("http://{host}")), ("cookie", &cookie), ("x-sagedeck-csrf", &csrf)], vec![]).await;
        assert_eq!(s, 200, "{host}: {b}");
    }
    let (_, journal) = app.call("journal/recent", &[("limit", "200")]).await;
    assert_eq!(ok_changes(&journal), ok_before, "nothing changed");
    assert!(!app.data_path().join("datasets/demo-shapes").exists(), "the demo set was not made");
    let rebinding: Vec<&Value> = journal.as_array().unwrap().iter().filter(|c| c["target"].as_str().unwrap_or_default().contains("(Host: evil.example")).collect();
    assert!(!rebinding.is_empty(), "the refused changes are journaled with the name they used");
    let (answered, failed, slowest) = health.finish().await;
    println!("rebinding: {} attacks refused; /healthz {answered} answered, {failed} failed, slowest {slowest:?}", t.sent);
    assert_eq!(failed, 0);
}

/// Attack images made with Pillow and by hand: bombs, a header-only JPEG,
/// a chunk flood, and a valid image to send alongside.
fn attack_images(out: &std::path::Path) {
    std::fs::create_dir_all(out).unwrap();
    let script = r#"
import io, os, struct, sys, zlib
from PIL import Image
out = sys.argv[1]
def png_with_size(w, h):
    buf = io.BytesIO(); Image.new("RGB", (8, 8), (9, 9, 9)).save(buf, "PNG"); b = bytearray(buf.getvalue())
    b[16:24] = struct.pack(">II", w, h); b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)
open(f"{out}/bomb.png", "wb").write(png_with_size(16000, 16000))
open(f"{out}/wide.png", "wb").write(png_with_size(100000, 1))
# A 16384 x 16384 grey PNG of highly compressed zeros: a real image, far more than its size justifies.
raw = b"".join(b"\0" + b"\0" * 16384 for _ in range(2048))
idat = zlib.compress(raw, 9)
ihdr = struct.pack(">IIBBBBB", 16384, 16384, 8, 0, 0, 0, 0)
def chunk(kind, data): return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
open(f"{out}/zeros.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
# A JPEG of headers only (the 1.4 KB file of the report): no scan.
buf = io.BytesIO(); Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "JPEG"); j = buf.getvalue()
sos = j.index(b"\xff\xda"); open(f"{out}/headers.jpg", "wb").write(j[:sos] + b"\xff\xd9")
# The same JPEG declaring 16384 x 16384 in its frame header.
sof = j.index(b"\xff\xc0"); big = bytearray(j); big[sof+5:sof+9] = struct.pack(">HH", 16384, 16384)
open(f"{out}/bigframe.jpg", "wb").write(bytes(big))
# A PNG flood: hundreds of thousands of empty chunks before its data.
buf = io.BytesIO(); Image.new("RGB", (8, 8)).save(buf, "PNG"); p = buf.getvalue()
open(f"{out}/flood.png", "wb").write(p[:33] + chunk(b"tEXt", b"") * 300000 + p[33:])
Image.new("RGB", (120, 90), (10, 200, 40)).save(f"{out}/valid.png")
"#;
    let venv = repo_root().join(".venv/bin/python");
    let status = std::process::Command::new(if venv.exists() { venv } else { "python3".into() }).args(["-c", script]).arg(out).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn decoder_bombs_floods_and_special_files_are_refused_with_memory_bounded() {
    let _cores = QUIET.read().await;
    let app = App::spawn(AwsSetup::None);
    let (job, data) = app.completed_small_job().await;
    app.deploy_local_endpoint("shapes", job, 4, 0, 64).await;
    let images = app.data_path().join("attack-images");
    attack_images(&images);
    let (rss_before, peak_before) = app.memory_mb();
    let health = HealthWatch::start(&app.url);
    let mut t = Tally::default();
    let cases = [
        ("bomb.png", "image/png", "decompression bomb"),
        ("wide.png", "image/png", "larger than 16384"),
        ("zeros.png", "image/png", "decompression bomb"),
        ("headers.jpg", "image/jpeg", "no image data"),
        ("bigframe.jpg", "image/jpeg", "decompression bomb"),
        ("flood.png", "image/png", "chunk flood"),
    ];
    for (file, content_type, expected) in cases {
        let started = std::time::Instant::now();
        let (s, _, b) = app.post_bytes("/endpoints/shapes/invocations", Some(content_type), std::fs::read(images.join(file)).unwrap()).await;
        // SageMaker's shape: the container's 422 inside a 424 ModelError.
        t.expect("decoder: one at a time", file, s, &[424], &b);
        assert!(b.contains(expected) && b.contains("\"OriginalStatusCode\":422"), "{file}: {b}");
        assert!(started.elapsed() < Duration::from_secs(3), "{file} took {:?}", started.elapsed());
    }
    // Sixteen of each at once, and a valid image in the middle of them.
    let mut attacks = Vec::new();
    for round in 0..16 {
        for (file, content_type, _) in cases {
            let (url, bytes) = (format!("{}/endpoints/shapes/invocations", app.url), std::fs::read(images.join(file)).unwrap());
            attacks.push(tokio::spawn(async move {
                let r = reqwest::Client::new().post(url).header("content-type", content_type).body(bytes).send().await.unwrap();
                (format!("{file} #{round}"), r.status().as_u16(), r.text().await.unwrap_or_default())
            }));
        }
    }
    let started = std::time::Instant::now();
    let (s, _, b) = app.post_bytes("/endpoints/shapes/invocations", Some("image/png"), std::fs::read(images.join("valid.png")).unwrap()).await;
    let valid_took = started.elapsed();
    assert_eq!(s, 200, "{b}");
    for attack in attacks {
        let (what, s, b) = attack.await.unwrap();
        t.expect("decoder: sixteen of each at once", &what, s, &[424], &b);
    }
    // Special files in a test-bench folder: a FIFO, links to a device and out
    // of the roots, a sparse 2 GB "image".
    let bench = app.data_path().join("bench/test/001.Circle");
    std::fs::create_dir_all(&bench).unwrap();
    let real = std::fs::read_dir(data.join("test/001.Circle")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&real, bench.join("good.jpg")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(bench.join("fifo.jpg")).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/zero", bench.join("zero.jpg")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::copy(&real, outside.path().join("secret.jpg")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.jpg"), bench.join("outside.jpg")).unwrap();
    std::fs::File::create(bench.join("sparse.jpg")).unwrap().set_len(2 << 30).unwrap();
    let started = std::time::Instant::now();
    let (code, report) = app.call("endpoints/testbench", &[("backend", "Local"), ("name", "shapes"), ("folder", app.data_path().join("bench").to_str().unwrap()), ("limit", "50")]).await;
    assert_eq!(code, 200, "{report}");
    assert!(started.elapsed() < Duration::from_secs(20), "the test bench took {:?}", started.elapsed());
    let failed: Vec<(String, String)> = serde_json::from_value(report["failed"].clone()).unwrap();
    for (file, reason) in [("fifo.jpg", "not a regular file"), ("zero.jpg", "outside"), ("outside.jpg", "outside"), ("sparse.jpg", "larger than")] {
        let found = failed.iter().find(|(p, _)| p.ends_with(file));
        t.expect("special file in a test bench", file, if found.is_some_and(|(_, r)| r.contains(reason)) { 422 } else { 200 }, &[422], &format!("{failed:?}"));
    }
    assert_eq!(report["images"].as_u64(), Some(1), "only the good image was classified: {report}");
    assert!(!report.to_string().contains("secret"), "nothing of the file outside the roots is shown");

    assert!(t.through.is_empty(), "{} of {} got through:\n{}", t.through.len(), t.sent, t.through.join("\n"));
    let (answered, failed_health, slowest) = health.finish().await;
    let (rss_after, peak_after) = app.memory_mb();
    println!(
        "decoders: {} attacks refused; a valid image answered in {valid_took:?} among 96 bombs; /healthz {answered} answered, {failed_health} failed, slowest {slowest:?}; \
         server memory {rss_before:.0} MB before, peak {peak_before:.0} → {peak_after:.0} MB, {rss_after:.0} MB after",
        t.sent
    );
    assert_eq!(failed_health, 0);
    assert!(valid_took < Duration::from_secs(5), "a valid image waited {valid_took:?}");
    assert!(peak_after - peak_before < 400.0, "decoding raised the peak by {:.0} MB", peak_after - peak_before);
}

#[tokio::test]
async fn special_files_in_a_dataset_never_stall_the_check_or_the_worker() {
    let _cores = QUIET.read().await;
    let app = App::spawn(AwsSetup::None);
    let data = app.data_path().join("tiny");
    sagedeck_cli(&["demo-data", "--out", data.to_str().unwrap(), "--per-class", "8", "--size", "32"]);
    let class = data.join("train/001.Circle");
    assert!(std::process::Command::new("mkfifo").arg(class.join("fifo.jpg")).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/zero", class.join("zero.jpg")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::copy(class.join("0000.jpg"), outside.path().join("elsewhere.jpg")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("elsewhere.jpg"), class.join("outside.jpg")).unwrap();
    std::fs::File::create(class.join("sparse.jpg")).unwrap().set_len(2 << 30).unwrap();
    std::os::unix::fs::symlink(class.join("0001.jpg"), class.join("inside.jpg")).unwrap();
    let started = std::time::Instant::now();
    let (code, report) = tokio::time::timeout(Duration::from_secs(20), app.call("training/datasets/check", &[("path", data.to_str().unwrap())]))
        .await
        .expect("the check answers");
    assert_eq!(code, 200, "{report}");
    let reason = |file: &str| {
        report["skipped"].as_array().unwrap().iter().find(|s| s["path"].as_str().unwrap().ends_with(file)).map(|s| s["reason"].as_str().unwrap().to_string())
    };
    assert!(reason("fifo.jpg").unwrap().contains("not a regular file"), "{report}");
    assert!(reason("zero.jpg").unwrap().contains("outside"), "{report}");
    assert!(reason("outside.jpg").unwrap().contains("outside"), "{report}");
    assert!(reason("sparse.jpg").unwrap().contains("larger than"), "{report}");
    assert_eq!(reason("inside.jpg"), None, "a link within the dataset is read");
    println!("dataset check with a FIFO, device and outside links and a 2 GB sparse file: {:?}", started.elapsed());
    // A job on it is queued, runs and finishes; the worker is not held.
    let spec = json!({ "spec": {
        "name": "special", "dataset": data.display().to_string(), "architecture": "resnet18", "image_size": 32, "epochs": 1,
        "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
        "backbone_weights": null, "freeze_backbone": false, "seed": 1
    }});
    let (code, created) = app.call_json("training/local/create", &spec).await;
    assert_eq!(code, 200, "{created}");
    let id = created["id"].as_i64().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (_, job) = app.call("training/local/get", &[("id", &id)]).await;
        match job["summary"]["status"].as_str() {
            Some("Completed") => break,
            Some("Failed" | "Interrupted" | "Cancelled") => panic!("{job:#}"),
            _ => assert!(std::time::Instant::now() < deadline, "the job is stuck: {job:#}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_cut_capped_and_cannot_hold_a_shutdown() {
    let _cores = QUIET.write().await;
    let app = App::spawn_with(
        AwsSetup::None,
        &["--header-timeout", "2", "--body-timeout", "3", "--max-connections", "300", "--shutdown-grace", "2"],
    );
    let addr = app.addr();
    let (_, peak_before) = app.memory_mb();
    let health = HealthWatch::start(&app.url);
    // 200 connections that never send a byte: all closed by the server.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // A head sent a line every 0.5 s, and a body a byte every 0.5 s.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slow_head = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let started = std::time::Instant::now();
            let _ = s.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).await;
            for i in 0..40 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if s.write_all(format!("x-slow-{i}: y\r\n").as_bytes()).await.is_err() {
                    break;
                }
            }
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
            started.elapsed()
        })
    };
    let slow_body = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let started = std::time::Instant::now();
            let head = format!("POST /api/auth/whoami HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n");
            let _ = s.write_all(head.as_bytes()).await;
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if s.write_all(b"a").await.is_err() {
                    break;
                }
            }
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
            (started.elapsed(), String::from_utf8_lossy(&answer).to_string())
        })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut closed = 0;
    for s in &mut idle {
        let mut byte = [0u8; 1];
        if matches!(tokio::time::timeout(Duration::from_millis(100), s.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    let head_took = slow_head.await.unwrap();
    let (body_took, body_answer) = slow_body.await.unwrap();
    // Over the cap: beyond 300 open connections the answer is an immediate 503.
    // The 320 connect at once and are read at once: one after another, on a
    // busy machine the first could reach the 2 s header deadline (and free
    // their places) before the last arrived, and the cap would never be met.
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..320 {
        let addr = addr.clone();
        connecting.spawn(async move { tokio::net::TcpStream::connect(&addr).await.unwrap() });
    }
    let hold: Vec<tokio::net::TcpStream> = connecting.join_all().await;
    let mut reading = tokio::task::JoinSet::new();
    for mut s in hold {
        reading.spawn(async move {
            let mut buf = vec![0u8; 512];
            let refused = match tokio::time::timeout(Duration::from_millis(1000), s.read(&mut buf)).await {
                Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).contains("503 Service Unavailable"),
                _ => false,
            };
            (refused, s)
        });
    }
    let read: Vec<(bool, tokio::net::TcpStream)> = reading.join_all().await;
    let refused = read.iter().filter(|(r, _)| *r).count();
    drop(read);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (answered, failed, slowest) = health.finish().await;
    let (_, peak_after) = app.memory_mb();
    println!(
        "connections: {closed}/200 idle closed; slow head cut after {head_took:?}; slow body answered after {body_took:?}; \
         {refused} over the cap refused at once; /healthz {answered} answered, {failed} failed (during the cap), slowest {slowest:?}; peak {peak_before:.0} → {peak_after:.0} MB"
    );
    assert_eq!(closed, 200, "idle connections are closed at the header deadline");
    assert!(head_took < Duration::from_secs(5), "a slow head held its connection {head_took:?}");
    assert!(body_took < Duration::from_secs(6), "a slow body held its request {body_took:?}");
    assert!(body_answer.starts_with("HTTP/1.1 4") || body_answer.is_empty(), "{body_answer}");
    assert!(refused >= 20, "only {refused} of the connections over the cap were refused");
    assert!(answered > 20);
    // Health checks fail only while the cap is reached, never from idle or slow clients.
    assert!(failed <= 12, "/healthz failed {failed} times");
    // A half-sent request does not hold the shutdown past its grace.
    let mut pending = tokio::net::TcpStream::connect(&addr).await.unwrap();
    pending.write_all(format!("POST /api/auth/whoami HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\nab").as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let took = tokio::task::spawn_blocking(move || app.terminate_within(Duration::from_secs(15))).await.unwrap();
    println!("SIGTERM with a half-sent request: exited after {took:?}");
    assert!(took.is_some_and(|t| t < Duration::from_secs(6)), "SIGTERM took {took:?}");
}

#[tokio::test]
async fn sign_in_guesses_are_counted_before_they_are_checked_and_lookalikes_named() {
    let _cores = QUIET.read().await;
    let app = App::spawn_with_users(AwsSetup::None, &[]);
    let (_, peak_before) = app.memory_mb();
    // 40, then 200, wrong guesses at once from one address: five are checked.
    let mut checked = Vec::new();
    for n in [40usize, 200] {
        let app = App::spawn_with_users(AwsSetup::None, &[]);
        let (_, base) = app.memory_mb();
        let mut tries = Vec::new();
        for i in 0..n {
            let url = app.url.clone();
            tries.push(tokio::spawn(async move {
                let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
                let page = client.get(format!("{url}/login")).send().await.unwrap();
                let csrf = set_cookies(page.headers()).into_iter().find(|(k, _)| k == "sagedeck_csrf").unwrap().1;
                let body = form_encode(&[("name", "operator"), ("password", &format!("guess number {i}")), ("csrf", &csrf), ("next", "/")]);
                let r = client
                    .post(format!("{url}/auth/login"))
                    .header("origin", &url)
                    .header("cookie", format!("sagedeck_csrf={csrf}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tries {
            statuses.push(t.await.unwrap());
        }
        let wrong = statuses.iter().filter(|s| **s == 401).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(wrong + limited, n, "{statuses:?}");
        assert!(wrong <= 5, "{wrong} of {n} parallel guesses were checked");
        let (rss, peak) = app.memory_mb();
        checked.push((n, wrong, rss, peak - base));
    }
    // A `next` with a control character stays on the console.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = client.get(format!("{}/login", app.url)).send().await.unwrap();
    let csrf = set_cookies(page.headers()).into_iter().find(|(k, _)| k == "sagedeck_csrf").unwrap().1;
    for next in ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example"] {
        let body = form_encode(&[("name", "admin"), ("password", PASSWORD), ("csrf", &csrf), ("next", next)]);
        let r = client
            .post(format!("{}/auth/login", app.url))
            .header("origin", &app.url)
            .header("cookie", format!("sagedeck_csrf={csrf}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(r.headers()["location"], "/", "{next:?}");
    }
    // Look-alike names are refused and journaled as what they are.
    for lookalike in ["admin\u{200b}", "\u{202e}nimda", "аdmin"] {
        let err = app.sign_in(lookalike, PASSWORD).await.unwrap_err();
        assert_eq!(err.0, 401);
    }
    // Locking the admin's name out from another address does not lock out the
    // admin's own browser (its device cookie), only browsers without one.
    let app = App::spawn_with_users(AwsSetup::None, &[]);
    let sign_in_from = |source: &'static str, device: Option<String>, password: &'static str| {
        let url = app.url.clone();
        async move {
            let client = client_from(source);
            let page = client.get(format!("{url}/login")).send().await.unwrap();
            let csrf = set_cookies(page.headers()).into_iter().find(|(k, _)| k == "sagedeck_csrf").unwrap().1;
            let mut cookie = format!("sagedeck_csrf={csrf}");
            if let Some(d) = &device {
                cookie.push_str(&format!("; sagedeck_device={d}"));
            }
            let r = client
                .post(format!("{url}/auth/login"))
                .header("origin", &url)
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_encode(&[("name", "admin"), ("password", password), ("csrf", &csrf), ("next", "/")]))
                .send()
                .await
                .unwrap();
            let device = set_cookies(r.headers()).into_iter().find(|(k, _)| k == "sagedeck_device").map(|(_, v)| v);
            (r.status().as_u16(), device)
        }
    };
    let (status, device) = sign_in_from("127.0.0.1", None, PASSWORD).await;
    assert_eq!(status, 303);
    let device = device.expect("a device cookie after signing in");
    for _ in 0..5 {
        assert_eq!(sign_in_from("127.0.0.2", None, "someone guessing").await.0, 401);
    }
    assert_eq!(sign_in_from("127.0.0.2", None, PASSWORD).await.0, 429, "the guessing address is blocked");
    assert_eq!(sign_in_from("127.0.0.3", None, PASSWORD).await.0, 429, "the name is locked for browsers it does not know");
    assert_eq!(sign_in_from("127.0.0.1", Some(device), PASSWORD).await.0, 303, "the admin's own browser still signs in");
    let (_, peak_after) = app.memory_mb();
    for (n, wrong, rss, growth) in &checked {
        println!("sign-in: {n} parallel guesses, {wrong} checked; server memory {rss:.0} MB after, peak raised by {growth:.0} MB");
    }
    assert!(checked.iter().all(|(_, _, _, growth)| *growth < 150.0), "{checked:?}");
    let _ = (peak_before, peak_after);
}

#[tokio::test]
async fn the_journal_stays_bounded_against_huge_names_rotating_addresses_and_long_searches() {
    let _cores = QUIET.read().await;
    let app = App::spawn_with_users(AwsSetup::None, &[]);
    let viewer = app.sign_in("viewer", PASSWORD).await.unwrap();
    let admin = app.sign_in("admin", PASSWORD).await.unwrap();
    let huge = "n".repeat(65_000);
    // A viewer's refused invocations with 65 KB names, 150 of them.
    for _ in 0..150 {
        let (s, _, _) = app
            .raw("POST", &format!("/endpoints/{huge}/invocations"), &[("cookie", &viewer.cookie), ("x-sagedeck-csrf", &viewer.csrf), ("origin", &app.url), ("content-type", "image/png")], b"x".to_vec())
            .await;
        assert!(matches!(s, 403 | 414 | 431), "{s}");
    }
    // Anonymous refusals from 40 rotating loopback addresses.
    for i in 2..42 {
        let client = client_from(&format!("127.0.0.{i}"));
        for _ in 0..5 {
            let r = client.post(format!("{}/api/notebooks/stop", app.url)).form(&[("name", "nb")]).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 401);
        }
    }
    app.use_session(Some(admin));
    let (code, err) = app.call_json("journal/search", &json!({ "query": { "text": "x".repeat(60_000), "limit": 10 } })).await;
    assert_eq!(code, 400, "{err}");
    let (_, journal) = app.call_json("journal/search", &json!({ "query": { "action": "auth.denied", "limit": 500 } })).await;
    let entries = journal.as_array().unwrap();
    let viewer_entries = entries.iter().filter(|e| e["actor"] == "viewer").count();
    let anonymous = entries.iter().filter(|e| e["actor"].as_str().unwrap().starts_with("anonymous")).count();
    let bytes = journal.to_string().len();
    println!("journal: {viewer_entries} of the viewer's 150 refusals and {anonymous} of 200 anonymous ones journaled; {} entries, {bytes} bytes", entries.len());
    assert!(viewer_entries <= 60 && anonymous <= 60, "viewer {viewer_entries}, anonymous {anonymous}");
    assert!(entries.iter().all(|e| e["target"].as_str().unwrap().chars().count() <= 400), "targets are cut");
    assert!(bytes < 200_000, "the refusals take {bytes} bytes of journal");
}
