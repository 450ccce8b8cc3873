use clap::Parser;
use sagedeck::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
        Some(command) => {
            let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
            let result = match command {
                Command::Train(args) => sagedeck::training::cli::train(args).await,
                Command::DemoData(args) => sagedeck::training::cli::demo_data(args),
                Command::Bench(args) => tokio::task::spawn_blocking(move || sagedeck::training::bench::run(args))
                    .await
                    .unwrap_or_else(|e| Err(anyhow::anyhow!("the benchmark crashed: {e}"))),
                Command::Predict(args) => sagedeck::endpoints::bench::predict(args),
                Command::BenchServe(args) => sagedeck::endpoints::bench::run(args).await,
                Command::IamReview(args) => sagedeck::iam::review_command(args),
                Command::User(args) => sagedeck::auth::user_command(args).await,
                Command::Serve(_) => unreachable!("handled above"),
            };
            return match result {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sagedeck: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&args.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    match sagedeck::serve(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sagedeck: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
