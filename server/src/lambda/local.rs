//! Local functions: the seeds' Lambda handler (forward the event to the
//! endpoint, return the body in an API Gateway-style envelope) run in this
//! process for a local endpoint, with Lambda's concurrency semantics.
//!
//! - Reserved concurrency is a hard cap: an invocation that would be the
//!   N+1th running at once is refused at once with 429 and Lambda's
//!   `TooManyRequestsException` body. Without a reservation the function
//!   shares what the other local functions left unreserved of a 1000 limit.
//! - Execution environments are kept warm between invocations; a new one
//!   pays an Init phase (reported as `Init Duration`, as Lambda does).
//!   Provisioned concurrency initialises that many environments up front and
//!   never lets them go; on-demand ones are dropped after 5 idle minutes.
//! - Each invocation logs START / END / REPORT lines, kept per function.

use crate::body::{parse_payload, Payload};
use crate::endpoints::EndpointHub;
use app::lambda::{LocalFunctionSpec, LOCAL_ACCOUNT_LIMIT};
use app::ApiError;
use axum::body::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// On-demand environments idle longer than this are dropped.
pub const IDLE_REAP: Duration = Duration::from_secs(300);
const LOG_LINES: usize = 400;

/// One execution environment: what the handler's init made.
struct Environment {
    /// The endpoint the handler resolved at init (its ENDPOINT_NAME).
    endpoint: String,
    provisioned: bool,
    last_used: Instant,
}

pub struct LocalFunction {
    pub name: String,
    pub endpoint: String,
    pub reserved: Option<u32>,
    pub provisioned: Option<u32>,
    pub created_at: String,
    in_flight: AtomicU32,
    /// The most invocations ever admitted at once.
    peak: AtomicU32,
    idle: Mutex<Vec<Environment>>,
    /// Environments in existence (idle or running).
    environments: AtomicU32,
    logs: Mutex<VecDeque<String>>,
}

/// Why an invocation did not run.
#[derive(Debug, PartialEq)]
pub enum Throttled {
    Reserved(u32),
    Account(u32),
}

/// The answer of one invocation.
pub struct Invocation {
    pub request_id: String,
    /// The handler's return value, or Lambda's error payload.
    pub payload: String,
    /// `Unhandled` when the handler raised (the endpoint refused the event).
    pub function_error: Option<String>,
    pub duration: Duration,
    pub init: Option<Duration>,
    /// The handler's own time (the duration less the init), as REPORT says.
    pub handler: Duration,
    /// Invocations running at once when this one was admitted, itself included.
    pub concurrent: u32,
    pub log_tail: String,
}

fn request_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Lowers `in_flight` when an invocation ends, however it ends.
struct Running<'a>(&'a AtomicU32);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LocalFunction {
    pub fn new(spec: &LocalFunctionSpec, created_at: String) -> Arc<LocalFunction> {
        let f = Arc::new(LocalFunction {
            name: spec.name.clone(),
            endpoint: spec.endpoint.clone(),
            reserved: spec.reserved,
            provisioned: spec.provisioned,
            created_at,
            in_flight: AtomicU32::new(0),
            peak: AtomicU32::new(0),
            idle: Mutex::new(Vec::new()),
            environments: AtomicU32::new(0),
            logs: Mutex::new(VecDeque::new()),
        });
        f.provision();
        f
    }

    /// Initialises the provisioned environments (once, at configuration).
    fn provision(&self) {
        let n = self.provisioned.unwrap_or(0);
        let mut idle = self.idle.lock().expect("environments");
        for _ in 0..n {
            idle.push(Environment { endpoint: self.endpoint.clone(), provisioned: true, last_used: Instant::now() });
            self.environments.fetch_add(1, Ordering::SeqCst);
        }
        drop(idle);
        if n > 0 {
            self.log(format!("INIT_START provisioned concurrency: {n} environment(s) initialised for {}", self.endpoint));
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn peak_in_flight(&self) -> u32 {
        self.peak.load(Ordering::SeqCst)
    }

    pub fn warm(&self) -> u32 {
        self.idle.lock().expect("environments").len() as u32
    }

    fn log(&self, line: String) {
        let stamp = time::OffsetDateTime::now_utc()
            .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"))
            .unwrap_or_default();
        let mut logs = self.logs.lock().expect("logs");
        logs.push_back(format!("{stamp} {line}"));
        while logs.len() > LOG_LINES {
            logs.pop_front();
        }
    }

    /// The latest `lines` of every invocation, oldest first (what the
    /// function's CloudWatch log group would show).
    pub fn recent_log(&self, lines: usize) -> Vec<String> {
        let logs = self.logs.lock().expect("logs");
        logs.iter().skip(logs.len().saturating_sub(lines)).cloned().collect()
    }

    /// Runs the handler on `event`, or refuses at once when the function's
    /// concurrency (`account_free`: what is unreserved, for a function
    /// without a reservation) is used up.
    pub async fn invoke(&self, hub: &EndpointHub, event: Bytes, account_free: u32) -> Result<Invocation, Throttled> {
        let limit = self.reserved.unwrap_or(account_free);
        // Admission is one compare-and-swap: never more than `limit` at
        // once, and a refused call never takes a slot, even for a moment.
        let Ok(before) = self.in_flight.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1)) else {
            return Err(match self.reserved {
                Some(r) => Throttled::Reserved(r),
                None => Throttled::Account(account_free),
            });
        };
        let running = before + 1;
        let _guard = Running(&self.in_flight);
        self.peak.fetch_max(running, Ordering::SeqCst);
        let id = request_id();
        let started = Instant::now();
        // A warm environment if there is one (most recently used first, as
        // Lambda does), else a cold start.
        let (env, init) = {
            let taken = {
                let mut idle = self.idle.lock().expect("environments");
                idle.retain(|e| e.provisioned || e.last_used.elapsed() < IDLE_REAP || {
                    self.environments.fetch_sub(1, Ordering::SeqCst);
                    false
                });
                idle.sort_by_key(|e| e.last_used);
                idle.pop()
            };
            match taken {
                Some(env) => (env, None),
                None => {
                    let init_started = Instant::now();
                    // The handler's init: read ENDPOINT_NAME, resolve the
                    // endpoint, and make its first call (the seeds' handler
                    // creates its client and pays the first request's setup).
                    let env = Environment { endpoint: self.endpoint.clone(), provisioned: false, last_used: Instant::now() };
                    warm_up(hub, &env.endpoint).await;
                    self.environments.fetch_add(1, Ordering::SeqCst);
                    (env, Some(init_started.elapsed()))
                }
            }
        };
        // This invocation's own lines: what LogType=Tail returns (never the
        // lines of another invocation running beside it, or of the last one).
        let mut own = Vec::new();
        let mut log = |line: String| {
            own.push(line.clone());
            self.log(line);
        };
        if let Some(init) = init {
            log(format!("INIT_REPORT Init Duration: {:.2} ms", init.as_secs_f64() * 1000.0));
        }
        log(format!("START RequestId: {id} Version: $LATEST"));
        let result = forward(hub, &env.endpoint, event).await;
        let duration = started.elapsed();
        let (payload, function_error) = match result {
            Ok(body) => (
                serde_json::json!({
                    "statusCode": 200,
                    "headers": { "Content-Type": "text/plain", "Access-Control-Allow-Origin": "*" },
                    "body": body,
                })
                .to_string(),
                None,
            ),
            Err(e) => {
                log(format!("[ERROR] {}: {}", e.title(), e.message()));
                (
                    serde_json::json!({ "errorMessage": e.message(), "errorType": "ModelError", "requestId": id }).to_string(),
                    Some("Unhandled".to_string()),
                )
            }
        };
        log(format!("END RequestId: {id}"));
        // Lambda bills and reports the handler's time, the init apart.
        let handler = duration.saturating_sub(init.unwrap_or_default());
        let billed = handler.as_millis().max(1);
        log(format!(
            "REPORT RequestId: {id} Duration: {:.2} ms Billed Duration: {billed} ms{}",
            handler.as_secs_f64() * 1000.0,
            init.map(|i| format!(" Init Duration: {:.2} ms", i.as_secs_f64() * 1000.0)).unwrap_or_default()
        ));
        self.idle.lock().expect("environments").push(Environment { last_used: Instant::now(), ..env });
        Ok(Invocation { request_id: id, payload, function_error, duration, init, handler, concurrent: running, log_tail: own.join("\n") })
    }
}

/// A new environment's first call: one blank image of the model's size
/// through the endpoint (what a cold start pays once). Nothing when the
/// endpoint is not running; the invocation then says why.
async fn warm_up(hub: &EndpointHub, endpoint: &str) {
    let Some(runtime) = hub.runtime(endpoint) else { return };
    let size = runtime.info.size();
    if let Ok(answer) = runtime.submit(vec![0f32; 3 * size * size]) {
        let _ = answer.await;
    }
}

/// The seeds' handler: the event, as JSON, to the endpoint; the logits back.
async fn forward(hub: &EndpointHub, endpoint: &str, event: Bytes) -> Result<String, ApiError> {
    let runtime = hub.runtime(endpoint).ok_or_else(|| {
        ApiError::NotFound(format!("Could not find endpoint \"{endpoint}\" (it was deleted, or never deployed locally)"))
    })?;
    let started = Instant::now();
    let result = async {
        let bytes = match parse_payload(Some("application/json"), event)? {
            Payload::Image(bytes) => bytes,
            Payload::Url(url) => hub.fetcher.fetch(&url).await?,
        };
        hub.run_local(endpoint, &runtime, bytes).await
    }
    .await;
    hub.record_outcome(endpoint, runtime.instances(), started.elapsed(), result.as_ref());
    result.map(|answer| serde_json::to_string(&[answer.logits]).unwrap_or_default())
}

/// What a function without a reservation may use: the local limit less
/// every reservation.
pub fn unreserved(functions: &[Arc<LocalFunction>]) -> u32 {
    LOCAL_ACCOUNT_LIMIT.saturating_sub(functions.iter().filter_map(|f| f.reserved).sum())
}
