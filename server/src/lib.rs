//! The `sagedeck` server: configuration, the SQLite store, the AWS adapters,
//! the local runtime and the HTTP router. `main.rs` only parses flags and
//! calls [`serve`].

pub mod auth;
pub mod aws;
pub mod body;
pub mod cloudwatch;
pub mod config;
pub mod connections;
pub mod costs;
pub mod endpoints;
pub mod http;
pub mod iam;
pub mod images;
pub mod journal;
pub mod lambda;
pub mod local;
pub mod minutes;
pub mod notebooks;
pub mod overview;
pub mod paths;
pub mod poller;
pub mod s3;
pub mod site;
pub mod scaling;
pub mod schedules;
pub mod store;
pub mod training;

use config::ServeArgs;
use std::sync::Arc;

/// Starts the console and runs until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create the data directory {}: {e}", args.data_dir.display()))?;

    let database = args.database_url();
    let pool = store::open(&database).await?;
    tracing::info!(%database, "store open (WAL, migrations applied)");

    let aws = Arc::new(aws::Aws::connect(args.aws).await);
    let roots = paths::ReadableRoots::new(std::iter::once(args.data_dir.clone()).chain(args.dataset_root.iter().cloned()));
    let journal = journal::Journal::new(pool.clone());
    let interrupted = journal.sweep_interrupted().await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "the last run stopped while handling changes; each is in the journal as request.interrupted");
    }

    // Before listening: a non-loopback address without users is refused here.
    let auth = auth::Auth::start(
        pool.clone(),
        journal.clone(),
        auth::AuthConfig {
            bind: args.bind,
            secure_cookies: args.secure_cookies,
            public_hosts: args.public_host.clone(),
            trust_proxy: args.trust_proxy,
        },
    )
    .await?;

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.bind))?;
    let addr = listener.local_addr()?;

    let endpoints = endpoints::EndpointHub::start(
        pool.clone(),
        journal.clone(),
        training::jobs::JobStore::new(pool.clone()),
        aws.clone(),
        endpoints::invoke::UrlFetcher {
            enabled: args.allow_url_fetch,
            max_bytes: body::MAX_PAYLOAD,
            timeout: std::time::Duration::from_secs(5),
        },
        roots.clone(),
        args.data_dir.join("imports").join("sagemaker"),
    )
    .await;
    let uploads = training::upload::UploadHub::start(pool.clone(), journal.clone(), aws.clone(), roots.clone()).await;
    let scaling = scaling::ScalingHub::start(pool.clone(), journal.clone(), endpoints.clone(), aws.clone()).await;
    let lambda = lambda::LambdaHub::start(pool.clone(), journal.clone(), endpoints.clone(), scaling.clone(), aws.clone()).await;
    let lambda_metrics = lambda.metrics.clone();
    let iam = Arc::new(iam::AwsIam::new(aws.clone(), journal.clone()));
    let reverter =
        Arc::new(lambda::ConsoleReverter {
        scaling: scaling.clone(),
        lambda: lambda.clone(),
        iam: iam.clone(),
        endpoints: endpoints.clone(),
        journal: journal.clone(),
    });
    let notebooks: app::notebooks::Notebooks = Arc::new(notebooks::AwsNotebooks::new(aws.clone(), journal.clone()));
    let costs = Arc::new(costs::CostHub::new(pool.clone(), aws.clone(), notebooks.clone(), endpoints.clone()));
    let schedules = schedules::ScheduleHub::start(
        pool.clone(),
        journal.clone(),
        schedules::Actors { notebooks: notebooks.clone(), endpoints: endpoints.clone(), scaling: scaling.clone(), costs: costs.clone() },
    );
    let services = http::Services {
        status: Arc::new(overview::ConsoleStatus {
            listen: addr.to_string(),
            data_dir: args.data_dir.display().to_string(),
            database: database.clone(),
            pool: pool.clone(),
            aws: aws.clone(),
            journal: journal.clone(),
        }),
        notebooks,
        costs,
        schedules,
        local_training: training::worker::LocalTrainer::start(
            training::jobs::JobStore::new(pool.clone()),
            journal.clone(),
            args.data_dir.clone(),
            roots,
        )
        .await,
        sagemaker_training: training::sagemaker::SageMakerJobs::start(pool.clone(), aws.clone(), journal.clone()),
        uploads,
        endpoints: endpoints.clone(),
        scaling,
        lambda,
        reverter,
        iam,
        sessions: Arc::new(auth::login::SessionEnder { auth: auth.clone() }),
    };
    let metrics = services.endpoints.metrics.clone();
    let function_metrics = lambda_metrics.clone();
    // scripts/build.sh names the browser files by content hash and writes
    // hash.txt next to the binary; a `cargo leptos build` site has plain names.
    let hashed = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join("hash.txt"))).is_some_and(|p| p.is_file());
    let leptos = leptos::prelude::LeptosOptions::builder()
        .output_name("sagedeck")
        .site_root(args.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .hash_files(hashed)
        .build();
    let built = std::fs::read_dir(args.site_root.join("pkg"))
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".wasm")))
        .unwrap_or(false);
    if !built {
        tracing::warn!(
            site_root = %args.site_root.display(),
            "the built site (pkg/*.wasm) is missing: pages render but will not become interactive. Build with scripts/build.sh."
        );
    }
    let app = http::router(http::AppState { leptos, services }, auth);

    // Tests and scripts read this line to learn the port when binding to :0.
    println!("sagedeck listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let limits = connections::Limits::for_this_process(&args);
    tracing::info!(?limits, "connection limits");
    connections::serve(listener, app, limits, shutdown_signal()).await;
    if let Err(e) = metrics.flush().await {
        tracing::warn!(error = %e, "the last endpoint metrics could not be written");
    }
    if let Err(e) = function_metrics.flush().await {
        tracing::warn!(error = %e, "the last function metrics could not be written");
    }
    // Connections cut off at the grace period may still hold a database
    // connection: closing waits for those only briefly.
    if tokio::time::timeout(std::time::Duration::from_secs(3), pool.close()).await.is_err() {
        tracing::warn!("the database was closed with work still in flight");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
