//! Sign-in and request safety: users and sessions (`users`), the login page
//! and its rate limit (`login`, `limiter`), and the guard every request passes
//! through (`guard`: who is asking, may they, CSRF, body limits, security
//! headers).
//!
//! Sign-in is on as soon as one user exists, and must be for any address
//! other than loopback: `serve` refuses to start otherwise. With no users on
//! loopback the console runs open, as the machine's own tool, and its header
//! says so.

pub mod guard;
pub mod host;
pub mod limiter;
pub mod login;
pub mod users;

use crate::journal::{Change, Journal};
use app::auth::{Principal, Role};
use app::ApiError;
use limiter::FailureWindow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use users::Users;

/// argon2 checks at once: 2 × 19 MiB.
pub const VERIFICATIONS_AT_ONCE: usize = 2;

/// The console's sign-in state, shared by the guard and the login routes.
pub struct Auth {
    pub users: Users,
    pub journal: Journal,
    /// Latched on: once a user exists (or the console listens beyond
    /// loopback) it never goes back to open without a restart.
    required: AtomicBool,
    last_check: Mutex<Instant>,
    pub limiter: Mutex<FailureWindow>,
    /// argon2 verifications running at once (19 MiB each): more wait briefly,
    /// then get 429, so a flood of sign-ins cannot take the memory.
    pub verifying: tokio::sync::Semaphore,
    /// Refusals of signed-in users, per user: only the first
    /// [`guard::ANONYMOUS_DENIALS_JOURNALED`] a minute are journaled.
    pub user_denials: Mutex<FailureWindow>,
    /// Refusals of callers who are not signed in, per address: only the first
    /// [`guard::ANONYMOUS_DENIALS_JOURNALED`] a minute are journaled, so a
    /// hostile client cannot grow the journal without bound.
    pub anonymous_denials: Mutex<FailureWindow>,
    /// Mark cookies Secure even when no proxy says the request came over TLS.
    pub secure_cookies: bool,
    /// The names requests may call the console by.
    pub hosts: host::AllowedHosts,
    /// X-Forwarded-Host and -Proto are believed (a trusted proxy sets them).
    pub trust_proxy: bool,
    /// Signs the open console's CSRF tokens (migrations/0011).
    csrf_key: [u8; 32],
}

/// How sign-in and request safety are set up (from `serve`'s flags).
#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub bind: std::net::SocketAddr,
    pub secure_cookies: bool,
    pub public_hosts: Vec<String>,
    pub trust_proxy: bool,
}

impl Auth {
    /// Refuses a non-loopback address while no user exists.
    pub async fn start(pool: sqlx::SqlitePool, journal: Journal, config: AuthConfig) -> anyhow::Result<Arc<Auth>> {
        let bind = config.bind;
        let csrf_key = console_key(&pool, "csrf").await?;
        let users = Users::new(pool);
        let any = users.any().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if !any && !bind.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {bind} without sign-in: anyone who can reach that address could stop notebooks, \
                 launch paid jobs or change IAM. Add a user first (`sagedeck user add NAME --role admin`), or bind to \
                 loopback (--bind 127.0.0.1:3000) and reach it through an SSH tunnel."
            );
        }
        Ok(Arc::new(Auth {
            users,
            journal,
            required: AtomicBool::new(any || !bind.ip().is_loopback()),
            last_check: Mutex::new(Instant::now()),
            limiter: Mutex::new(FailureWindow::new(5, Duration::from_secs(15 * 60))),
            verifying: tokio::sync::Semaphore::new(VERIFICATIONS_AT_ONCE),
            user_denials: Mutex::new(FailureWindow::new(guard::ANONYMOUS_DENIALS_JOURNALED, Duration::from_secs(60))),
            anonymous_denials: Mutex::new(FailureWindow::new(guard::ANONYMOUS_DENIALS_JOURNALED, Duration::from_secs(60))),
            secure_cookies: config.secure_cookies,
            hosts: host::AllowedHosts::new(config.public_hosts),
            trust_proxy: config.trust_proxy,
            csrf_key,
        }))
    }

    /// A CSRF token signed with the console's key: `nonce.mac`.
    pub fn new_csrf(&self) -> String {
        let nonce = users::new_token().unwrap_or_default();
        let mac = self.csrf_mac(&nonce);
        format!("{nonce}.{mac}")
    }

    /// Whether a token is one this console signed.
    pub fn csrf_is_ours(&self, token: &str) -> bool {
        token.split_once('.').is_some_and(|(nonce, mac)| !nonce.is_empty() && guard::same_token(mac, &self.csrf_mac(nonce)))
    }

    fn csrf_mac(&self, nonce: &str) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes any key length");
        mac.update(nonce.as_bytes());
        mac.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether requests must be signed in. While open, looks for a first user
    /// at most once a second, so `sagedeck user add` takes effect at once.
    pub async fn required(&self) -> bool {
        if self.required.load(Ordering::Relaxed) {
            return true;
        }
        let due = {
            let mut last = self.last_check.lock().expect("auth check clock");
            if last.elapsed() >= Duration::from_secs(1) {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due && self.users.any().await.unwrap_or(false) {
            tracing::info!("a user exists now: sign-in is required from here on");
            self.required.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// The console's key named `name`, made (random) the first time.
async fn console_key(pool: &sqlx::SqlitePool, name: &str) -> anyhow::Result<[u8; 32]> {
    let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM console_secrets WHERE name = ?").bind(name).fetch_optional(pool).await?;
    if let Some(key) = stored.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok()) {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| anyhow::anyhow!("no randomness for the console's key: {e}"))?;
    sqlx::query("INSERT OR REPLACE INTO console_secrets (name, value, created_at) VALUES (?, ?, ?)")
        .bind(name)
        .bind(key.to_vec())
        .bind(crate::store::now())
        .execute(pool)
        .await?;
    Ok(key)
}

// ---- `sagedeck user ...` ----

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
    /// Folder of the console's database (as for `serve`).
    #[arg(long, env = "SAGEDECK_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: std::path::PathBuf,
    /// SQLite database URL [default: sqlite://<data-dir>/sagedeck.db].
    #[arg(long, env = "SAGEDECK_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserAction {
    /// Add a user; the password is asked twice on a terminal, or read from
    /// the first line of standard input.
    Add {
        name: String,
        /// viewer (reads), operator (jobs, deploys, invocations, scaling) or admin (IAM, users).
        #[arg(long)]
        role: String,
    },
    /// Remove a user; their sessions and API tokens end with them.
    Remove { name: String },
    /// Set a new password (read like `add`); the user's sessions end.
    Passwd { name: String },
    /// Change a user's role.
    Role { name: String, role: String },
    /// List users and their roles.
    List,
    /// Print a new API token for programs (`Authorization: Bearer TOKEN`); it acts with the user's role.
    Token {
        name: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

fn read_password(confirm: bool) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        if confirm && rpassword::prompt_password("Again: ")? != first {
            anyhow::bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// Runs a `sagedeck user` command; each change is journaled with the Unix
/// user who ran it.
pub async fn user_command(args: UserArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("sagedeck.db").display()));
    let pool = crate::store::open(&url).await?;
    let users = Users::new(pool.clone());
    let journal = Journal::new(pool.clone());
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let actor = Principal { name: format!("{who} (command line)"), role: Role::Admin, open: false };
    let result = crate::journal::acting_as(actor, async {
        let (action, target, after, outcome): (&str, String, Option<String>, Result<String, ApiError>) = match &args.action {
            UserAction::Add { name, role } => {
                let role = Role::parse(role).map_err(anyhow::Error::msg)?;
                let password = read_password(true)?;
                ("user.add", name.clone(), Some(role.to_string()), users.add(name, &password, role).await.map(|_| format!("added {name} ({role})")))
            }
            UserAction::Remove { name } => ("user.remove", name.clone(), None, users.remove(name).await.map(|_| format!("removed {name}"))),
            UserAction::Passwd { name } => {
                let password = read_password(true)?;
                ("user.passwd", name.clone(), None, users.set_password(name, &password).await.map(|_| format!("new password for {name}; their sessions and API tokens ended")))
            }
            UserAction::Role { name, role } => {
                let role = Role::parse(role).map_err(anyhow::Error::msg)?;
                ("user.role", name.clone(), Some(role.to_string()), users.set_role(name, role).await.map(|before| format!("{name}: {before} → {role}")))
            }
            UserAction::List => {
                for (name, role, created) in users.list().await? {
                    println!("{name}\t{role}\t{created}");
                }
                return Ok(());
            }
            UserAction::Token { name, label } => {
                ("user.token", name.clone(), Some(label.clone()), users.add_token(name, label).await)
            }
        };
        journal
            .record(Change {
                backend: "local",
                action,
                target: &target,
                before: None,
                after: if action == "user.token" { Some(format!("token {:?}", after.unwrap_or_default())) } else { after },
                outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            })
            .await;
        let message = outcome.map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{message}");
        Ok::<(), anyhow::Error>(())
    })
    .await;
    pool.close().await;
    result
}
