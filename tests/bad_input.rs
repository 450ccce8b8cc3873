//! The bad-input corpus: broken images, oversized uploads, malformed JSON,
//! impossible policies and forms, unknown names, each with the status and
//! the words the user must get; then a check that nothing changed and the
//! server still answers.

use sagedeck_tests::*;

/// One bad request and what must come back.
struct Case {
    what: &'static str,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    /// Words the answer must contain (case-insensitive).
    says: &'static str,
}

fn case(what: &'static str, path: &str, content_type: &'static str, body: impl Into<Vec<u8>>, status: u16, says: &'static str) -> Case {
    Case { what, path: path.to_string(), content_type, body: body.into(), status, says }
}

fn json_case(what: &'static str, endpoint: &str, body: Value, status: u16, says: &'static str) -> Case {
    case(what, &format!("/api/{endpoint}"), "application/json", body.to_string(), status, says)
}

fn form_case(what: &'static str, endpoint: &str, form: &[(&str, &str)], status: u16, says: &'static str) -> Case {
    case(what, &format!("/api/{endpoint}"), "application/x-www-form-urlencoded", form_encode(form), status, says)
}

fn policy(min: u32, max: u32, target: f64, cooldown_in: u32) -> Value {
    json!({ "backend": "Local", "endpoint": "shapes", "variant": "replicas", "policy": {
        "min_instances": min, "max_instances": max, "target_value": target, "scale_in_cooldown_s": cooldown_in,
        "scale_out_cooldown_s": 2, "disable_scale_in": false, "datapoint_seconds": 2 } })
}

fn training(dataset: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut spec = json!({ "name": "bad", "dataset": dataset, "architecture": "resnet18", "image_size": 32, "epochs": 1,
        "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
        "backbone_weights": null, "freeze_backbone": false, "seed": 1 });
    change(&mut spec);
    json!({ "spec": spec })
}

fn png(width: u32, height: u32) -> Vec<u8> {
    // A valid PNG header and IHDR of any size; the decoder refuses the size
    // before it reads pixels.
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut crc = 0xffff_ffffu32;
    for b in &ihdr {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let mut crc = 0xffff_ffffu32;
    for b in &body {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

/// A PNG that declares `width` × `height` and carries a few bytes of data:
/// what a decompression bomb looks like before it is inflated.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut out = png(width, height);
    out.extend(chunk(b"IDAT", b"\x78\x9c\x63\x00\x00\x00\x01\x00\x01"));
    out.extend(chunk(b"IEND", b""));
    out
}

/// A small PNG made of thousands of empty text chunks.
fn png_chunk_flood() -> Vec<u8> {
    let mut out = png(8, 8);
    for _ in 0..3000 {
        out.extend(chunk(b"tEXt", b"a\0"));
    }
    out.extend(chunk(b"IDAT", b"\x78\x9c\x63\x00\x00\x00\x01\x00\x01"));
    out.extend(chunk(b"IEND", b""));
    out
}

/// A JPEG's headers with a frame of 64 × 64 and no scan: no pixels at all.
fn jpeg_without_scan() -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 8, 0x00, 0x40, 0x00, 0x40, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// What the corpus must not change: endpoints, jobs, functions, policies.
async fn state(app: &App) -> Vec<Value> {
    let mut s = Vec::new();
    let (code, endpoints) = app.call_json("endpoints/list", &json!({ "query": {} })).await;
    assert_eq!(code, 200, "{endpoints}");
    s.push(endpoints);
    for endpoint in ["training/local/list", "lambda/list", "scaling/overview"] {
        let (code, answer) = app.call(endpoint, &[]).await;
        assert_eq!(code, 200, "{endpoint}: {answer}");
        s.push(answer);
    }
    s
}

#[tokio::test]
async fn the_bad_input_corpus_gets_clear_errors_and_changes_nothing() {
    let app = App::spawn(AwsSetup::None);
    let (job, data) = app.completed_small_job().await;
    let deploy = json!({ "spec": { "name": "shapes", "job_id": job, "instances": 1,
        "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 8 } } });
    let (code, detail) = app.call_json("endpoints/local/deploy", &deploy).await;
    assert_eq!(code, 200, "{detail}");
    let (code, f) = app.call_json("lambda/local/create", &json!({ "spec": { "name": "f", "endpoint": "shapes", "reserved": 2, "provisioned": null } })).await;
    assert_eq!(code, 200, "{f}");
    let image = {
        let dir = data.join("test/001.Circle");
        std::fs::read(std::fs::read_dir(dir).unwrap().next().unwrap().unwrap().path()).unwrap()
    };
    let dataset = data.display().to_string();
    let invoke = "/endpoints/shapes/invocations";

    let before = state(&app).await;
    let (_, journal_before) = app.call("journal/recent", &[("limit", "500")]).await;
    let ok_before = journal_before.as_array().unwrap().iter().filter(|c| c["outcome"] == "ok").count();

    let mut half = image.clone();
    half.truncate(image.len() / 2);
    let corpus = vec![
        // Images.
        // What a model container refuses reaches the client as SageMaker's ModelError (424).
        case("an empty body", invoke, "image/jpeg", vec![], 424, "empty"),
        case("a JPEG cut in half", invoke, "image/jpeg", half, 424, "truncated"),
        case("text sent as a PNG", invoke, "image/png", "hello, not an image", 424, "not a JPEG or PNG image"),
        case("random bytes as application/x-image", invoke, "application/x-image", vec![7u8; 5000], 424, "not a JPEG or PNG image"),
        case("a PNG of 100000 × 1 pixels", invoke, "image/png", png(100_000, 1), 424, "16384"),
        case("a GIF content type", invoke, "image/gif", image.clone(), 424, "image/jpeg"),
        case("text/plain", invoke, "text/plain", "cat", 424, "image/jpeg"),
        case("a 7 MB upload", invoke, "image/jpeg", vec![0u8; 7_000_000], 413, "6 MB"),
        case("a 50 MB upload", invoke, "image/jpeg", vec![0u8; 50_000_000], 413, "6 MB"),
        case("malformed JSON", invoke, "application/json", "{\"image_base64\": ", 424, "json"),
        case("JSON without an image", invoke, "application/json", "{\"picture\": 1}", 424, "image_base64"),
        case("base64 that is not base64", invoke, "application/json", "{\"image_base64\": \"@@@not base64@@@\"}", 424, "base64"),
        case("a URL while fetching is off", invoke, "application/json", "{\"url\": \"https://example.com/dog.jpg\"}", 424, "turned off"),
        // Hostile images: bombs and floods are refused before they are inflated.
        case("a PNG declaring 12000 × 12000 in 70 bytes", invoke, "image/png", png_bomb(12_000, 12_000), 424, "decompression bomb"),
        case("a PNG of 3000 empty chunks", invoke, "image/png", png_chunk_flood(), 424, "chunk flood"),
        case("a PNG header with no pixels", invoke, "image/png", png(64, 64), 424, "no image data"),
        case("a JPEG frame with no scan", invoke, "image/jpeg", jpeg_without_scan(), 424, "no image data"),
        case("an endpoint that does not exist", "/endpoints/nope/invocations", "image/jpeg", image.clone(), 400, "nope"),
        case("a function payload that is not JSON", "/functions/f/invocations", "application/json", "{{{", 400, "json"),
        case("a function that does not exist", "/functions/nope/invocations", "application/json", "{}", 404, "nope"),
        // Scaling policies.
        json_case("min above max", "scaling/put", policy(3, 1, 60.0, 4), 400, "min"),
        json_case("a zero target", "scaling/put", policy(1, 3, 0.0, 4), 400, "target"),
        json_case("a negative target", "scaling/put", policy(1, 3, -5.0, 4), 400, "target"),
        json_case("a cooldown over an hour", "scaling/put", policy(1, 3, 60.0, 99_999), 400, "cooldown"),
        json_case("a policy for an unknown endpoint", "scaling/put", {
            let mut p = policy(1, 3, 60.0, 4);
            p["endpoint"] = json!("ghost");
            p
        }, 404, "ghost"),
        json_case("a policy name on a local endpoint", "scaling/put", {
            let mut p = policy(1, 3, 60.0, 4);
            p["policy"]["name"] = json!("by-hand");
            p
        }, 400, "name"),
        case("malformed JSON for a policy", "/api/scaling/put", "application/json", "{\"backend\": \"Local\", ", 400, "malformed request"),
        json_case("a policy without its fields", "scaling/put", json!({ "backend": "Local", "endpoint": "shapes" }), 400, "missing field"),
        json_case("a min of -1", "scaling/put", json!({ "backend": "Local", "endpoint": "shapes", "variant": "replicas", "policy": { "min_instances": -1 } }), 400, "malformed request"),
        // Training and deploy forms.
        json_case("a learning rate of 0", "training/local/create", training(&dataset, |s| s["learning_rate"] = json!(0.0)), 400, "learning_rate"),
        json_case("0 epochs", "training/local/create", training(&dataset, |s| s["epochs"] = json!(0)), 400, "epochs"),
        json_case("a batch of 100000", "training/local/create", training(&dataset, |s| s["batch_size"] = json!(100_000)), 400, "batch_size"),
        json_case("an unknown architecture", "training/local/create", training(&dataset, |s| s["architecture"] = json!("resnet9000")), 400, "malformed request"),
        json_case("epochs as text", "training/local/create", training(&dataset, |s| s["epochs"] = json!("ten")), 400, "malformed request"),
        json_case("a crop range upside down", "training/local/create", training(&dataset, |s| s["augmentation"] = json!({ "flip": false, "crop": [0.9, 0.5] })), 400, "augmentation"),
        json_case("a crop of 1 % of the image", "training/local/create", training(&dataset, |s| s["augmentation"] = json!({ "flip": true, "crop": [0.01, 1.0] })), 400, "augmentation"),
        json_case("an image size of 7", "training/local/create", training(&dataset, |s| s["image_size"] = json!(7)), 400, "image_size"),
        json_case("a job name with a slash", "training/local/create", training(&dataset, |s| s["name"] = json!("a/b")), 400, "name"),
        json_case("a dataset outside the data folder", "training/local/create", training("/usr", |_| {}), 400, "outside the folders"),
        json_case("a deploy name with capitals", "endpoints/local/deploy", json!({ "spec": { "name": "Bad_Name", "job_id": job, "instances": 1,
            "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 8 } } }), 400, "name"),
        json_case("0 replicas", "endpoints/local/deploy", json!({ "spec": { "name": "zero", "job_id": job, "instances": 0,
            "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 8 } } }), 400, "instances"),
        json_case("a job that does not exist", "endpoints/local/deploy", json!({ "spec": { "name": "ghost", "job_id": 99_999, "instances": 1,
            "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 8 } } }), 404, "99999"),
        json_case("the same endpoint name twice", "endpoints/local/deploy", deploy.clone(), 409, "shapes"),
        // Lambda, journal, AWS-only calls.
        form_case("a reservation for an unknown function", "lambda/reserved", &[("home", "Local"), ("name", "ghost"), ("value", "2")], 404, "ghost"),
        form_case("a reservation of -3", "lambda/reserved", &[("home", "Local"), ("name", "f"), ("value", "-3")], 400, "malformed request"),
        form_case("a test event that is not JSON", "lambda/invoke", &[("home", "Local"), ("name", "f"), ("event", "{oops")], 400, "not json"),
        form_case("metrics of a function that does not exist", "lambda/metrics", &[("home", "Local"), ("name", "ghost"), ("window", "Hour")], 404, "ghost"),
        form_case("metrics over a week", "lambda/metrics", &[("home", "Local"), ("name", "f"), ("window", "Week")], 400, "malformed request"),
        // Names are parsed into their types before a server function runs.
        form_case("an endpoint name with a slash", "endpoints/describe", &[("backend", "Local"), ("name", "../etc")], 400, "is not a valid endpoint name"),
        form_case("a function name with a space", "lambda/delete", &[("home", "Local"), ("name", "my function")], 400, "is not a valid function name"),
        form_case("a variant name with an underscore", "scaling/remove", &[("backend", "Local"), ("endpoint", "shapes"), ("variant", "all_traffic")], 400, "is not a valid variant name"),
        form_case("a notebook name of 64 characters", "notebooks/describe", &[("name", &"n".repeat(64))], 400, "longer than 63"),
        form_case("a journal page of 0", "journal/recent", &[("limit", "0")], 400, "limit"),
        json_case("a journal search of 5000 characters", "journal/search", json!({ "query": { "text": "x".repeat(5000), "limit": 10 } }), 400, "at most"),
        json_case("a journal filter on outcome 'maybe'", "journal/search", json!({ "query": { "outcome": "maybe", "limit": 10 } }), 400, "outcome"),
        form_case("reverting a change that does not exist", "journal/revert", &[("id", "987654")], 404, "987654"),
        form_case("stopping a notebook with AWS off", "notebooks/stop", &[("name", "nb")], 503, "aws"),
        form_case("a server function that does not exist", "nope/nothing", &[], 404, "there is no server function"),
    ];
    assert!(corpus.len() >= 30, "the corpus must hold at least 30 cases, it has {}", corpus.len());

    let mut wrong = Vec::new();
    for c in &corpus {
        let (status, _, body) = app.post_bytes(&c.path, Some(c.content_type), c.body.clone()).await;
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(body.clone());
        if status != c.status || !message.to_lowercase().contains(&c.says.to_lowercase()) {
            wrong.push(format!("{}: expected {} with {:?}, got {status}: {message}", c.what, c.status, c.says));
        }
    }
    eprintln!("bad-input corpus: {} cases, {} as expected", corpus.len(), corpus.len() - wrong.len());
    assert!(wrong.is_empty(), "{} of {} cases went wrong:\n{}", wrong.len(), corpus.len(), wrong.join("\n"));

    // Nothing changed, the refusals that reached a change are journaled as
    // failures, and the endpoint still answers.
    assert_eq!(state(&app).await, before, "a bad input changed the console's state");
    let (_, journal) = app.call("journal/recent", &[("limit", "500")]).await;
    let journal = journal.as_array().unwrap();
    assert_eq!(journal.iter().filter(|c| c["outcome"] == "ok").count(), ok_before);
    assert!(journal.iter().any(|c| c["action"] == "endpoint.local.create" && c["outcome"] == "failed"), "failed deploys are journaled");
    let (status, _, body) = app.post_bytes(invoke, Some("image/jpeg"), image).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get("/healthz").await.0, 200);
}
