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
            log_to_stderr(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
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
                Command::Site(args) => sagedeck::site::assemble(args),
                Command::SeedHistory(args) => sagedeck::training::history::seed_command(args).await,
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
    log_to_stderr(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&args.log)));

    let code = match sagedeck::serve(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sagedeck: {e:#}");
            1
        }
    };
    // Exit now: the runtime would otherwise wait for blocking work still
    // running (a training step, a decode cut off at the grace period), and a
    // shutdown must end within a bounded time whatever the clients do.
    std::process::exit(code)
}

/// Log lines on stderr, coloured only on a terminal: a log file or the
/// journal of a service manager gets plain text, not escape codes.
fn log_to_stderr(filter: EnvFilter) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).init();
}
