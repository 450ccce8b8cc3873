//! The console on the embedded default: no AWS account at all.

use sagedeck_tests::{App, AwsSetup};

const PAGES: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/notebooks", "Notebooks"),
    ("/training", "Training"),
    ("/endpoints", "Endpoints"),
    ("/scaling", "Scaling"),
    ("/lambda", "Lambda"),
    ("/iam", "IAM"),
];

#[tokio::test]
async fn every_page_renders_with_the_navigation() {
    let app = App::spawn(AwsSetup::None);
    for (path, heading) in PAGES {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}");
        // Leptos leaves `<!>` hydration markers between text nodes.
        let body = body.replace("<!>", "");
        assert!(body.contains(&format!("<h1>{heading}</h1>")), "{path} lacks its heading");
        for (_, label) in PAGES {
            assert!(body.contains(label), "{path} lacks the nav entry {label}");
        }
        // The app script by its content-hashed name, and the server serves it.
        let script = body
            .match_indices("/pkg/sagedeck.")
            .filter_map(|(at, _)| body[at..].split(['"', '\'']).next())
            .find(|url| url.ends_with(".js"))
            .unwrap_or_else(|| panic!("{path} loads no app script"))
            .to_string();
        let (status, js) = app.get(&script).await;
        assert_eq!(status, 200, "{script}");
        assert!(js.contains("wasm"), "{script} is the wasm loader");
    }
}

/// The browser files as a release serves them: the brotli or gzip copy when
/// the browser accepts one, the file itself otherwise, each answer saying it
/// varies by Accept-Encoding (a shared cache must not hand brotli to a client
/// that did not ask for it), cached for a year under its content-hashed name.
#[tokio::test]
async fn browser_files_are_served_compressed_cached_and_marked_as_varying() {
    let app = App::spawn(AwsSetup::None);
    let (_, page) = app.get("/").await;
    let wasm = page
        .match_indices("/pkg/sagedeck.")
        .filter_map(|(at, _)| page[at..].split(['"', '\'']).next())
        .find(|url| url.ends_with(".wasm"))
        .expect("the page preloads its wasm")
        .to_string();
    let mut sizes = Vec::new();
    for (accepts, encoding) in [("br, gzip", Some("br")), ("gzip", Some("gzip")), ("identity", None)] {
        let (status, headers, _) = app.raw("GET", &wasm, &[("accept-encoding", accepts)], Vec::new()).await;
        assert_eq!(status, 200, "{wasm} with Accept-Encoding: {accepts}");
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(header("content-encoding").as_deref(), encoding, "{wasm} with Accept-Encoding: {accepts}");
        assert_eq!(header("content-type").as_deref(), Some("application/wasm"));
        assert_eq!(header("vary").as_deref(), Some("accept-encoding"), "{wasm} with Accept-Encoding: {accepts}");
        assert_eq!(header("cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
        sizes.push(header("content-length").and_then(|n| n.parse::<u64>().ok()).expect("a length"));
    }
    // brotli < gzip < the module itself.
    assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "sizes br, gzip, identity: {sizes:?}");
    // A revalidation answers 304 and still says what the answer varies by.
    let (_, headers, _) = app.raw("GET", &wasm, &[("accept-encoding", "br")], Vec::new()).await;
    let modified = headers.get("last-modified").and_then(|v| v.to_str().ok()).expect("Last-Modified").to_string();
    let (status, headers, _) =
        app.raw("GET", &wasm, &[("accept-encoding", "br"), ("if-modified-since", modified.as_str())], Vec::new()).await;
    assert_eq!(status, 304);
    assert_eq!(headers.get("vary").and_then(|v| v.to_str().ok()), Some("accept-encoding"));
}

#[tokio::test]
async fn every_page_is_built_and_works_without_aws() {
    let app = App::spawn(AwsSetup::None);
    for path in ["/notebooks", "/training", "/endpoints", "/scaling", "/lambda", "/iam", "/journal", "/costs"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}");
        // Without AWS a page says that AWS is not configured (the Notebooks page
        // has nothing else to show); any other error is a page that broke.
        let body = body.replace("<!>", "");
        for (at, _) in body.match_indices("class=\"error-panel\"") {
            let panel = &body[at..(at + 200).min(body.len())];
            assert!(panel.contains("<strong>Not configured</strong>"), "{path} shows an error without AWS: {panel}");
        }
    }
    // Without AWS the Training page trains locally and says why SageMaker is missing.
    let (_, body) = app.get("/training").await;
    assert!(body.contains("New local training job"));
    assert!(body.contains("New SageMaker training job"));
    // Without AWS the Endpoints page still lists and deploys local endpoints.
    let (_, body) = app.get("/endpoints").await;
    assert!(body.contains("Deploy a local endpoint"));
    assert!(body.contains("No endpoints yet"));
    // Scaling and Lambda work locally too, and say what AWS would add.
    let (_, body) = app.get("/scaling").await;
    assert!(body.contains("Target tracking on invocations per instance"));
    let (_, body) = app.get("/lambda").await;
    assert!(body.contains("Local function for a local endpoint"));
    let (status, body) = app.get("/journal").await;
    assert_eq!(status, 200);
    assert!(body.replace("<!>", "").contains("<h1>Change journal</h1>"));
}

#[tokio::test]
async fn overview_reports_local_runtime_store_and_aws_not_configured() {
    let app = App::spawn(AwsSetup::None);
    let (status, report) = app.call("overview/status", &[]).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["aws"]["state"], "NotConfigured");
    let reason = report["aws"]["reason"].as_str().unwrap();
    assert!(reason.contains("region"), "reason should name what is missing: {reason}");
    assert_eq!(report["store"]["journal_mode"], "wal");
    assert!(report["store"]["migrations_applied"].as_i64().unwrap() >= 1);
    assert!(report["local"]["self_check"]["Ok"].as_f64().is_some(), "libtorch self-check: {}", report["local"]);
    assert!(report["listen"].as_str().unwrap().starts_with("127.0.0.1:"));

    let (_, html) = app.get("/").await;
    assert!(html.contains("AWS: not configured"), "the header chip says AWS is not configured");
    assert!(html.contains("Local runtime"));
}

#[tokio::test]
async fn the_database_lives_in_the_data_dir_in_wal_mode() {
    let app = App::spawn(AwsSetup::None);
    let db = app.data_dir.path().join("sagedeck.db");
    assert!(db.exists(), "{} was not created", db.display());
    // WAL mode keeps a -wal file beside the database while it is open.
    assert!(app.data_dir.path().join("sagedeck.db-wal").exists());
}

#[tokio::test]
async fn aws_pages_without_aws_answer_503_with_the_reason() {
    let app = App::spawn(AwsSetup::None);
    let (status, err) = app.call("notebooks/list", &[]).await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["kind"], "NotConfigured");
    assert!(err["message"].as_str().unwrap().contains("AWS is not configured"));
    let (_, html) = app.get("/notebooks").await;
    assert!(html.contains("AWS is not configured"), "the page shows the reason in words");
}

#[tokio::test]
async fn aws_can_be_turned_off_explicitly() {
    let app = App::spawn_with(AwsSetup::None, &["--aws", "off"]);
    let (_, report) = app.call("overview/status", &[]).await;
    assert!(report["aws"]["reason"].as_str().unwrap().contains("turned off"));
}

#[tokio::test]
async fn bad_input_gets_400_with_a_message_and_the_server_stays_up() {
    let app = App::spawn(AwsSetup::None);
    let cases: &[(&str, &[(&str, &str)], &str)] = &[
        ("notebooks/describe", &[("name", "../../etc/passwd")], "letters, digits and hyphens"),
        ("notebooks/stop", &[("name", "-bad-")], "start and end"),
        ("notebooks/start", &[("name", "")], "required"),
        ("notebooks/describe", &[], "malformed request"),
        ("journal/recent", &[("limit", "0")], "limit must be"),
        ("journal/recent", &[("limit", "many")], "malformed request"),
    ];
    for (endpoint, form, needle) in cases {
        let (status, err) = app.call(endpoint, form).await;
        assert_eq!(status, 400, "{endpoint} {form:?}: {err}");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{endpoint} {form:?}: {message}");
    }
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_pages_are_404_and_health_answers() {
    let app = App::spawn(AwsSetup::None);
    let (status, body) = app.get("/no-such-page").await;
    assert_eq!(status, 404);
    assert!(body.contains("Page not found"));
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\""));
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let app = App::spawn(AwsSetup::None);
    let (status, _) = app.get("/").await;
    assert_eq!(status, 200);
    let (exit, log) = app.terminate();
    assert!(exit.success(), "exit status {exit:?}; log:\n{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
}
