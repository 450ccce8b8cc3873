//! The browser test: headless Chromium (Debian's, driven by playwright-core)
//! opens every page of a console that operates a moto account, finds the
//! notebook it created, stops and starts it through the UI.

use sagedeck_tests::{repo_root, App, AwsSetup, Moto};
use std::process::Command;

#[tokio::test]
async fn a_person_stops_and_starts_a_notebook_in_chromium() {
    let moto = Moto::start();
    let name = moto.create_notebook("browser-nb", "ml.t3.medium").await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    let script = repo_root().join("tests/browser/console.mjs");
    let shots = repo_root().join("target/browser-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let url = app.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("SAGEDECK_URL", url)
            .env("NOTEBOOK_NAME", name)
            .env("SCREENSHOT_DIR", shots)
            .output()
            .expect("run node (scripts/setup.sh test installs the browser driver)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser run failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
        app.log()
    );
    assert!(stdout.contains("browser: all checks passed"));
}
