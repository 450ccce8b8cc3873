//! Command-line and environment configuration, parsed by clap.

pub use crate::aws::AwsMode;
use clap::{Parser, Subcommand};
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
    /// Manage the console's users (sign-in is on once one exists).
    User(crate::auth::UserArgs),
    /// Assemble the served site from wasm-bindgen's output: content-hashed
    /// names, brotli and gzip copies (scripts/build.sh runs it).
    Site(crate::site::SiteArgs),
    /// Fill a database with a made-up job history (the history benchmark's data).
    SeedHistory(crate::training::history::SeedArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Any address other than loopback (127.0.0.0/8,
    /// ::1) needs sign-in: add a user first (`sagedeck user add`).
    #[arg(long, env = "SAGEDECK_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Folder for the database, datasets, checkpoints and artifacts.
    #[arg(long, env = "SAGEDECK_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// SQLite database URL [default: sqlite://<data-dir>/sagedeck.db].
    #[arg(long, env = "SAGEDECK_DATABASE_URL")]
    pub database_url: Option<String>,

    /// A folder the console may read datasets, test images and weights from,
    /// besides the data folder; repeat it, or separate with ':' in the variable.
    #[arg(long = "dataset-root", env = "SAGEDECK_DATASET_ROOTS", value_delimiter = ':')]
    pub dataset_root: Vec<PathBuf>,

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

    /// Mark the session cookies Secure (the console is served over TLS by a
    /// proxy that does not send X-Forwarded-Proto: https; with it, they are).
    #[arg(long, env = "SAGEDECK_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// A host name the console is reached by (a reverse proxy's or DNS
    /// name); repeat it, or separate with ',' in the variable. Requests must
    /// name the console in Host: its IP addresses and localhost always do,
    /// other names only when given here (against DNS rebinding).
    #[arg(long = "public-host", env = "SAGEDECK_PUBLIC_HOSTS", value_delimiter = ',')]
    pub public_host: Vec<String>,

    /// Believe X-Forwarded-Host and X-Forwarded-Proto: only behind a reverse
    /// proxy that sets them (any client can send them otherwise).
    #[arg(long, env = "SAGEDECK_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Seconds a client has to send a request's head (an idle keep-alive
    /// connection included) before the connection is closed.
    #[arg(long, env = "SAGEDECK_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,

    /// Seconds a client has to send a request's whole body.
    #[arg(long, env = "SAGEDECK_BODY_TIMEOUT", default_value_t = 60)]
    pub body_timeout: u64,

    /// Open connections at most (0: from the process's open-file limit);
    /// more are answered 503 at once.
    #[arg(long, env = "SAGEDECK_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Seconds requests in flight may take to finish after SIGTERM or SIGINT.
    #[arg(long, env = "SAGEDECK_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,

    /// Log filter in tracing's EnvFilter syntax (RUST_LOG is read too).
    #[arg(long, env = "SAGEDECK_LOG", default_value = "info,sagedeck=debug")]
    pub log: String,
}

impl ServeArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("sagedeck.db").display()))
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
