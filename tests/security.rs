//! The console's own safety, attacked over HTTP: a scripted attack set
//! (unauthenticated calls to every mutating route, a viewer calling operator
//! routes, cross-site posts, forged and missing CSRF tokens, oversized bodies,
//! path traversal, SSRF targets), sign-in itself (rate limit, sign-out, a new
//! password), the refusal to listen beyond loopback without users, and the
//! security headers.

use app::auth::{Role, SERVER_FN_ROLES};
use sagedeck_tests::*;
use std::io::{Read, Write};
use std::time::Duration;

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
        t.expect("SSRF target", url, s, &[400], &b);
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
