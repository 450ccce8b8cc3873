//! Command-line and environment configuration, parsed by clap.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "sagedeck", version, about = "Operations console for image-classification models on AWS SageMaker")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the console (the default when no command is given).
    Serve(ServeArgs),
    /// Train an image classifier on this machine, headless (the same worker as the Training page).
    Train(crate::training::cli::TrainArgs),
    /// Draw the demo dataset (five classes of shapes) into a folder.
    DemoData(crate::training::cli::DemoArgs),
    /// Measure the tch training loop against the equivalent PyTorch-Python loop on the same data.
    Bench(crate::training::bench::BenchArgs),
    /// Classify images with a local artifact, no server in between (the offline forward).
    Predict(crate::endpoints::bench::PredictArgs),
    /// Measure a local endpoint over HTTP against the raw forward and a Python reference server.
    BenchServe(crate::endpoints::bench::BenchServeArgs),
    /// Review the roles of an `aws iam get-account-authorization-details` file, offline; JSON on stdout.
    IamReview(crate::iam::IamReviewArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Sagedeck has no sign-in yet, so only loopback
    /// addresses (127.0.0.0/8, ::1) are accepted.
    #[arg(long, env = "SAGEDECK_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Folder for the database, datasets, checkpoints and artifacts.
    #[arg(long, env = "SAGEDECK_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// SQLite database URL [default: sqlite://<data-dir>/sagedeck.db].
    #[arg(long, env = "SAGEDECK_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Folder with the built site (pkg/ with the wasm, js and css).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Whether to reach AWS. `auto` uses the standard aws-config chain
    /// (profile, region, SSO, AWS_ENDPOINT_URL) when it finds credentials and
    /// a region; `off` never calls AWS.
    #[arg(long, env = "SAGEDECK_AWS", value_enum, default_value_t = AwsMode::Auto)]
    pub aws: AwsMode,

    /// Let `{"url": ...}` invocation bodies make the server fetch the image
    /// (http and https to public addresses only, 6 MB, 5 s, no redirects).
    #[arg(long, env = "SAGEDECK_ALLOW_URL_FETCH")]
    pub allow_url_fetch: bool,

    /// Log filter in tracing's EnvFilter syntax (RUST_LOG is read too).
    #[arg(long, env = "SAGEDECK_LOG", default_value = "info,sagedeck=debug")]
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AwsMode {
    Auto,
    Off,
}

impl ServeArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("sagedeck.db").display()))
    }

    /// Refuses addresses other machines could reach: without sign-in, anyone
    /// who can connect could stop notebooks or change IAM.
    pub fn check_bind(&self) -> Result<(), String> {
        if self.bind.ip().is_loopback() {
            Ok(())
        } else {
            Err(format!(
                "refusing to listen on {}: Sagedeck has no sign-in yet, so it only binds to loopback \
                 addresses (for example --bind 127.0.0.1:3000). Reach it from elsewhere through an SSH tunnel.",
                self.bind
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("sagedeck").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_to_loopback_and_a_database_in_the_data_dir() {
        let cli = parse(&["--data-dir", "/tmp/sd"]);
        assert_eq!(cli.serve.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(cli.serve.database_url(), "sqlite:///tmp/sd/sagedeck.db");
        assert!(cli.serve.check_bind().is_ok());
    }

    #[test]
    fn refuses_non_loopback_binds() {
        for addr in ["0.0.0.0:3000", "192.168.1.5:80", "[::]:3000"] {
            let cli = parse(&["--bind", addr]);
            let err = cli.serve.check_bind().unwrap_err();
            assert!(err.contains("no sign-in"), "{addr}: {err}");
        }
        assert!(parse(&["--bind", "[::1]:3000"]).serve.check_bind().is_ok());
        assert!(parse(&["--bind", "127.0.0.2:3000"]).serve.check_bind().is_ok());
    }

    #[test]
    fn serve_subcommand_takes_the_same_flags() {
        let cli = parse(&["serve", "--aws", "off", "--bind", "127.0.0.1:0"]);
        match cli.command {
            Some(Command::Serve(args)) => {
                assert_eq!(args.aws, AwsMode::Off);
                assert_eq!(args.bind.port(), 0);
            }
            _ => panic!("expected the serve subcommand"),
        }
    }

    #[test]
    fn rejects_a_malformed_bind_address() {
        assert!(Cli::try_parse_from(["sagedeck", "--bind", "localhost"]).is_err());
    }
}
