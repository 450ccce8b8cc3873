//! Lambda functions, local ([`local`]) and on AWS ([`aws`]), behind one
//! service; the local function routes; journaled, revertible concurrency
//! changes.

pub mod aws;
pub mod local;
pub mod metrics;

use crate::body::read_body;
use crate::endpoints::EndpointHub;
use crate::journal::{Change, Journal};
use crate::scaling::ScalingHub;
use app::names::{EndpointName, FunctionName};
use app::endpoints::{Backend, EndpointMetrics, EndpointService, MetricWindow};
use app::journal::ReverterService;
use app::lambda::{
    check_provisioned, check_reserved, AccountConcurrency, CapacityFacts, FnHome, FunctionDetail, FunctionList, FunctionSummary,
    InvokeOutcome, LambdaService, LambdaSetupSpec, LocalFunctionSpec, ProvisionedConfig, SetupReport, LOCAL_ACCOUNT_LIMIT,
};
use app::overview::ChangeRecord;
use app::ApiError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use local::{LocalFunction, Throttled};
use sqlx::SqlitePool;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The alias a local function's provisioned concurrency is put on: a local
/// function has one version, and Lambda never provisions $LATEST.
pub const LOCAL_ALIAS: &str = "live";

pub struct LambdaHub {
    pool: SqlitePool,
    journal: Journal,
    endpoints: Arc<EndpointHub>,
    scaling: Arc<ScalingHub>,
    aws: aws::AwsLambda,
    local: RwLock<BTreeMap<String, Arc<LocalFunction>>>,
    /// Local functions' Invocations, Errors, Throttles, Duration and
    /// ConcurrentExecutions per minute (AWS functions': CloudWatch).
    pub metrics: Arc<metrics::FunctionMetrics>,
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("function store")(e)
}

use crate::store::now;

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl LambdaHub {
    pub async fn start(pool: SqlitePool, journal: Journal, endpoints: Arc<EndpointHub>, scaling: Arc<ScalingHub>, aws: Arc<crate::aws::Aws>) -> Arc<Self> {
        let metrics = Arc::new(metrics::FunctionMetrics::new(pool.clone()));
        metrics.spawn_flusher(std::time::Duration::from_secs(5));
        let hub = Arc::new(LambdaHub {
            pool,
            journal,
            endpoints,
            scaling,
            aws: aws::AwsLambda::new(aws),
            local: RwLock::new(BTreeMap::new()),
            metrics,
        });
        let rows: Result<Vec<(String, String, Option<i64>, Option<i64>, String)>, _> =
            sqlx::query_as("SELECT name, endpoint, reserved, provisioned, created_at FROM local_functions").fetch_all(&hub.pool).await;
        match rows {
            Ok(rows) => {
                let mut map = hub.local.write().expect("functions");
                for (name, endpoint, reserved, provisioned, created_at) in rows {
                    let spec = LocalFunctionSpec { name: name.clone(), endpoint, reserved: reserved.map(|r| r as u32), provisioned: provisioned.map(|p| p as u32) };
                    map.insert(name, LocalFunction::new(&spec, created_at));
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the local functions"),
        }
        hub
    }

    fn function(&self, name: &str) -> Result<Arc<LocalFunction>, ApiError> {
        self.local
            .read()
            .expect("functions")
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("Function not found: there is no local function named {name:?}")))
    }

    fn local_account(&self) -> AccountConcurrency {
        let all: Vec<Arc<LocalFunction>> = self.local.read().expect("functions").values().cloned().collect();
        AccountConcurrency { limit: LOCAL_ACCOUNT_LIMIT, unreserved: local::unreserved(&all) }
    }

    fn local_spec(f: &LocalFunction) -> LocalFunctionSpec {
        LocalFunctionSpec { name: f.name.clone(), endpoint: f.endpoint.clone(), reserved: f.reserved, provisioned: f.provisioned }
    }

    /// Stores a local function's configuration and swaps in a fresh one
    /// (running invocations finish on the old one).
    async fn store_local(&self, spec: &LocalFunctionSpec, created_at: String) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO local_functions (name, endpoint, reserved, provisioned, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET endpoint = excluded.endpoint, reserved = excluded.reserved,
                provisioned = excluded.provisioned, updated_at = excluded.updated_at",
        )
        .bind(&spec.name)
        .bind(&spec.endpoint)
        .bind(spec.reserved.map(i64::from))
        .bind(spec.provisioned.map(i64::from))
        .bind(&created_at)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        self.local.write().expect("functions").insert(spec.name.clone(), LocalFunction::new(spec, created_at));
        Ok(())
    }

    async fn record(&self, home: FnHome, action: &str, target: &str, before: Option<String>, after: Option<String>, outcome: &Result<(), ApiError>, revert_of: Option<i64>) -> Option<i64> {
        let change = Change {
            backend: if home == FnHome::Local { "local" } else { "aws" },
            action,
            target,
            before,
            after,
            outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
        };
        match revert_of {
            Some(of) => self.journal.record_revert(change, of).await,
            None => self.journal.record(change).await,
        }
    }

    /// What the capacity check knows about a function's endpoint.
    async fn endpoint_facts(&self, facts: &mut CapacityFacts, backend: Backend) {
        // Names in a function's configuration were checked when it was made.
        let Some(endpoint) = facts.endpoint.as_deref().and_then(|e| EndpointName::parse(e).ok()) else { return };
        facts.endpoint_max_instances = self.scaling.max_instances(backend, &endpoint).await;
        if let Some((m, source)) = crate::endpoints::measured_latency(&self.endpoints, backend, &endpoint).await {
            facts.per_instance_per_minute = Some(m.per_instance_per_minute());
            facts.latency_ms = Some(m.end_to_end_ms());
            facts.measured_from = Some(m.describe(&source));
        }
    }

    async fn change_reserved(&self, home: FnHome, name: &str, value: Option<u32>, revert_of: Option<i64>) -> Result<Option<i64>, ApiError> {
        let (before, result) = match home {
            FnHome::Local => {
                let f = self.function(name)?;
                if let Some(v) = value {
                    check_reserved(v, Some(self.local_account()), f.reserved, f.provisioned.unwrap_or(0)).map_err(ApiError::Invalid)?;
                }
                let spec = LocalFunctionSpec { reserved: value, ..Self::local_spec(&f) };
                (f.reserved, self.store_local(&spec, f.created_at.clone()).await)
            }
            FnHome::Aws => {
                let current = self.aws.reserved(name).await?;
                if let Some(v) = value {
                    let provisioned: u32 = self.aws.provisioned(name).await.map(|p| p.iter().map(|c| c.requested).sum()).unwrap_or(0);
                    check_reserved(v, self.aws.account().await, current, provisioned).map_err(ApiError::Invalid)?;
                }
                (current, self.aws.set_reserved(name, value).await)
            }
        };
        let target = format!("{}/{name}", home.slug());
        let id = self.record(home, "lambda.reserved", &target, Some(json(&before)), Some(json(&value)), &result, revert_of).await;
        result.map(|()| id)
    }

    async fn change_provisioned(&self, home: FnHome, name: &str, qualifier: &str, value: Option<u32>, revert_of: Option<i64>) -> Result<Option<i64>, ApiError> {
        let (before, result) = match home {
            FnHome::Local => {
                let f = self.function(name)?;
                if qualifier != LOCAL_ALIAS {
                    return Err(ApiError::Invalid(format!("a local function has one alias for provisioned concurrency, {LOCAL_ALIAS:?}")));
                }
                if let Some(v) = value {
                    check_provisioned(qualifier, v, f.reserved, 0).map_err(ApiError::Invalid)?;
                }
                let spec = LocalFunctionSpec { provisioned: value, ..Self::local_spec(&f) };
                (f.provisioned, self.store_local(&spec, f.created_at.clone()).await)
            }
            FnHome::Aws => {
                let configs = self.aws.provisioned(name).await.unwrap_or_default();
                let before = configs.iter().find(|c| c.qualifier == qualifier).map(|c| c.requested);
                if let Some(v) = value {
                    let others: u32 = configs.iter().filter(|c| c.qualifier != qualifier).map(|c| c.requested).sum();
                    check_provisioned(qualifier, v, self.aws.reserved(name).await?, others).map_err(ApiError::Invalid)?;
                }
                (before, self.aws.set_provisioned(name, qualifier, value).await)
            }
        };
        let target = format!("{}/{name}:{qualifier}", home.slug());
        let id = self.record(home, "lambda.provisioned", &target, Some(json(&before)), Some(json(&value)), &result, revert_of).await;
        result.map(|()| id)
    }

    fn local_detail(&self, f: &LocalFunction) -> FunctionDetail {
        let summary = FunctionSummary {
            name: f.name.clone(),
            home: FnHome::Local,
            runtime: "sagedeck (in-process)".into(),
            endpoint: Some(f.endpoint.clone()),
            reserved: f.reserved,
            last_modified: Some(f.created_at.clone()),
        };
        FunctionDetail {
            arn: None,
            role: None,
            handler: Some("the seeds' handler (server/lambda/handler.py), run in-process".into()),
            memory_mb: None,
            timeout_s: None,
            environment: vec![("ENDPOINT_NAME".into(), f.endpoint.clone())],
            qualifiers: vec![LOCAL_ALIAS.into()],
            provisioned: f
                .provisioned
                .map(|n| ProvisionedConfig { qualifier: LOCAL_ALIAS.into(), requested: n, available: Some(n), status: "READY".into(), reason: None })
                .into_iter()
                .collect(),
            provisioned_note: None,
            provisioned_supported: true,
            facts: CapacityFacts {
                reserved: f.reserved,
                provisioned_total: f.provisioned.unwrap_or(0),
                account: Some(self.local_account()),
                endpoint: Some(f.endpoint.clone()),
                ..Default::default()
            },
            in_flight: Some(f.in_flight()),
            peak_in_flight: Some(f.peak_in_flight()),
            warm: Some(f.warm()),
            recent_log: f.recent_log(40),
            summary,
        }
    }

    async fn create_local_inner(&self, spec: &LocalFunctionSpec, revert_of: Option<i64>) -> Result<Option<i64>, ApiError> {
        if self.function(&spec.name).is_ok() {
            return Err(ApiError::Conflict(format!("a local function named {} already exists", spec.name)));
        }
        self.endpoints.describe(Backend::Local, &EndpointName::parse(&spec.endpoint)?).await?;
        if let Some(r) = spec.reserved {
            check_reserved(r, Some(self.local_account()), None, spec.provisioned.unwrap_or(0)).map_err(ApiError::Invalid)?;
        }
        if let Some(p) = spec.provisioned {
            check_provisioned(LOCAL_ALIAS, p, spec.reserved, 0).map_err(ApiError::Invalid)?;
        }
        let result = self.store_local(spec, now()).await;
        let target = format!("local/{}", spec.name);
        let id = self.record(FnHome::Local, "lambda.local.create", &target, Some("null".into()), Some(json(spec)), &result, revert_of).await;
        result.map(|()| id)
    }

    /// Deletes a function; a local one's configuration is kept in the
    /// journal so the deletion can be reverted.
    async fn delete_inner(&self, home: FnHome, name: &str, revert_of: Option<i64>) -> Result<Option<i64>, ApiError> {
        let (before, result) = match home {
            FnHome::Local => {
                let f = self.function(name)?;
                let r = sqlx::query("DELETE FROM local_functions WHERE name = ?").bind(name).execute(&self.pool).await.map(|_| ()).map_err(db);
                if r.is_ok() {
                    self.local.write().expect("functions").remove(name);
                }
                (json(&Self::local_spec(&f)), r)
            }
            FnHome::Aws => ("function".to_string(), self.aws.delete(name).await),
        };
        let id = self.record(home, "lambda.delete", &format!("{}/{name}", home.slug()), Some(before), Some("null".into()), &result, revert_of).await;
        result.map(|()| id)
    }

    /// Undoes the set-up: the function, then the role's policy and the role.
    async fn teardown(&self, function: &str, role_arn: &str, revert_of: Option<i64>) -> Result<Option<i64>, ApiError> {
        let role = role_arn.rsplit('/').next().unwrap_or_default().to_string();
        let result = self.aws.teardown(function, &role).await;
        let id = self
            .record(FnHome::Aws, "lambda.teardown", &format!("aws/{function}"), Some(format!("function {function} · role {role}")), Some("null".into()), &result, revert_of)
            .await;
        result.map(|()| id)
    }

    /// One invocation of a local function, as the HTTP route and the test
    /// button run it.
    pub async fn invoke_local(&self, name: &str, event: axum::body::Bytes) -> Result<local::Invocation, ApiError> {
        self.try_invoke_local(name, event).await?.map_err(|t| throttled(name, &t))
    }

    /// An invocation that ran, or why it was throttled (the route answers
    /// each reason in Lambda's own words).
    async fn try_invoke_local(&self, name: &str, event: axum::body::Bytes) -> Result<Result<local::Invocation, Throttled>, ApiError> {
        let f = self.function(name)?;
        let free = self.local_account().unreserved;
        let answer = f.invoke(&self.endpoints, event, free).await;
        self.metrics.record(
            name,
            match &answer {
                Ok(i) => metrics::Call::Ran { duration: i.handler, failed: i.function_error.is_some(), concurrent: i.concurrent },
                Err(_) => metrics::Call::Throttled,
            },
        );
        Ok(answer)
    }
}

fn throttled(name: &str, why: &Throttled) -> ApiError {
    ApiError::Throttled(match why {
        Throttled::Reserved(r) => format!("Rate Exceeded: {name} is at its reserved concurrency of {r}"),
        Throttled::Account(a) => format!("Rate Exceeded: the {a} unreserved concurrent executions are in use"),
    })
}

#[async_trait::async_trait]
impl LambdaService for LambdaHub {
    async fn list(&self) -> Result<FunctionList, ApiError> {
        let mut functions: Vec<FunctionSummary> = self.local.read().expect("functions").values().map(|f| self.local_detail(f).summary).collect();
        let aws_note = match self.aws.list().await {
            Ok(remote) => {
                functions.extend(remote);
                None
            }
            Err(e) => Some(e.message().to_string()),
        };
        Ok(FunctionList { functions, aws_note })
    }

    async fn describe(&self, home: FnHome, name: &FunctionName) -> Result<FunctionDetail, ApiError> {
        let (mut detail, backend) = match home {
            FnHome::Local => (self.local_detail(&*self.function(name)?), Backend::Local),
            FnHome::Aws => (self.aws.describe(name).await?, Backend::SageMaker),
        };
        self.endpoint_facts(&mut detail.facts, backend).await;
        Ok(detail)
    }

    async fn metrics(&self, home: FnHome, name: &FunctionName, window: MetricWindow) -> Result<EndpointMetrics, ApiError> {
        let (series, source) = match home {
            FnHome::Local => {
                self.function(name)?;
                (self.metrics.series(name, window).await?, "Recorded by Sagedeck per minute (kept in SQLite)".to_string())
            }
            FnHome::Aws => (self.aws.metrics(name, window).await?, "CloudWatch, namespace AWS/Lambda".to_string()),
        };
        Ok(EndpointMetrics { window, period_seconds: window.period_seconds(), series, source })
    }

    async fn set_reserved(&self, home: FnHome, name: &FunctionName, value: Option<u32>) -> Result<FunctionDetail, ApiError> {
        self.change_reserved(home, name, value, None).await?;
        self.describe(home, name).await
    }

    async fn set_provisioned(&self, home: FnHome, name: &FunctionName, qualifier: &str, value: Option<u32>) -> Result<FunctionDetail, ApiError> {
        self.change_provisioned(home, name, qualifier, value, None).await?;
        self.describe(home, name).await
    }

    async fn invoke(&self, home: FnHome, name: &FunctionName, event: &str) -> Result<InvokeOutcome, ApiError> {
        match home {
            FnHome::Aws => self.aws.invoke(name, event).await,
            FnHome::Local => {
                let i = self.invoke_local(name, axum::body::Bytes::from(event.to_string())).await?;
                Ok(InvokeOutcome {
                    status_code: 200,
                    payload: i.payload,
                    function_error: i.function_error,
                    // This invocation's own lines, as LogType=Tail returns them.
                    log_tail: i.log_tail,
                    duration_ms: i.duration.as_secs_f64() * 1000.0,
                })
            }
        }
    }

    async fn create_local(&self, spec: LocalFunctionSpec) -> Result<FunctionDetail, ApiError> {
        self.create_local_inner(&spec, None).await?;
        self.describe(FnHome::Local, &FunctionName::parse(&spec.name)?).await
    }

    async fn delete(&self, home: FnHome, name: &FunctionName) -> Result<(), ApiError> {
        self.delete_inner(home, name, None).await.map(|_| ())
    }

    async fn setup(&self, spec: LambdaSetupSpec) -> Result<SetupReport, ApiError> {
        let endpoint = self.endpoints.describe(Backend::SageMaker, &EndpointName::parse(&spec.endpoint)?).await?;
        let arn = endpoint.arn.clone().ok_or_else(|| ApiError::Upstream(format!("DescribeEndpoint gave no ARN for {}", spec.endpoint)))?;
        let result = self.aws.setup(&spec, &arn).await;
        let outcome = result.as_ref().map(|_| ()).map_err(|e| ApiError::Internal(e.message().to_string()));
        let after = result.as_ref().ok().map(|(role, policy, _)| {
            json(&serde_json::json!({ "function": spec.function_name, "role": role, "policy": policy }))
        });
        self.record(FnHome::Aws, "lambda.setup", &format!("aws/{}", spec.function_name), None, after, &outcome, None).await;
        let (role_arn, policy, mut steps) = result?;
        let test = match self.aws.invoke(&spec.function_name, r#"{"url": "https://example.com/dog.jpg"}"#).await {
            Ok(o) => {
                steps.push(format!("test invocation: status {}{}", o.status_code, o.function_error.as_deref().map(|e| format!(", function error {e}")).unwrap_or_default()));
                Some(o)
            }
            Err(e) => {
                steps.push(format!("test invocation could not run: {}", e.message()));
                None
            }
        };
        Ok(SetupReport { function_name: spec.function_name, role_arn, policy, steps, test })
    }
}

#[async_trait::async_trait]
impl ReverterService for LambdaHub {
    async fn revert(&self, id: i64) -> Result<ChangeRecord, ApiError> {
        let change = self.journal.get(id).await?;
        // The revert undoes an IAM change with IAM's role: an operator may
        // revert a scaling policy but not an IAM fix.
        if let Some(principal) = crate::journal::current() {
            principal.require(app::auth::revert_role(&change.action), &format!("reverting {}", change.action))?;
        }
        if !change.revertible {
            return Err(ApiError::Conflict(format!("change #{id} cannot be reverted (it failed, was already reverted, or is not a concurrency change)")));
        }
        let (home, rest) = change.target.split_once('/').ok_or_else(|| ApiError::Invalid(format!("{:?} is not a function target", change.target)))?;
        let home = FnHome::from_slug(home)?;
        let state = |s: &Option<String>| -> Result<serde_json::Value, ApiError> {
            serde_json::from_str(s.as_deref().unwrap_or("null")).map_err(|e| ApiError::Internal(format!("change #{id} has an unreadable state: {e}")))
        };
        let count = |v: serde_json::Value| v.as_u64().map(|n| n as u32);
        let new_id = match change.action.as_str() {
            "lambda.reserved" => self.change_reserved(home, rest, count(state(&change.before)?), Some(id)).await?,
            "lambda.provisioned" => {
                let (name, qualifier) = rest.split_once(':').ok_or_else(|| ApiError::Invalid(format!("{rest:?} names no qualifier")))?;
                self.change_provisioned(home, name, qualifier, count(state(&change.before)?), Some(id)).await?
            }
            "lambda.local.create" => self.delete_inner(FnHome::Local, rest, Some(id)).await?,
            "lambda.delete" if home == FnHome::Local => {
                let spec: LocalFunctionSpec = serde_json::from_value(state(&change.before)?)
                    .map_err(|e| ApiError::Internal(format!("change #{id} kept no configuration: {e}")))?;
                self.create_local_inner(&spec, Some(id)).await?
            }
            "lambda.setup" => {
                let made = state(&change.after)?;
                let (function, role) = (made["function"].as_str().unwrap_or(rest), made["role"].as_str().unwrap_or_default());
                self.teardown(function, role, Some(id)).await?
            }
            other => return Err(ApiError::Conflict(format!("{other} cannot be reverted from Sagedeck"))),
        };
        self.journal.get(new_id.ok_or_else(|| ApiError::Internal("the revert was applied but not journaled".into()))?).await
    }
}

/// Routes a revert to the service that made the change.
pub struct ConsoleReverter {
    pub scaling: Arc<ScalingHub>,
    pub lambda: Arc<LambdaHub>,
    pub iam: Arc<crate::iam::AwsIam>,
    pub endpoints: Arc<crate::endpoints::EndpointHub>,
    pub journal: Journal,
}

#[async_trait::async_trait]
impl ReverterService for ConsoleReverter {
    async fn revert(&self, id: i64) -> Result<ChangeRecord, ApiError> {
        let change = self.journal.get(id).await?;
        if change.action.starts_with("lambda.") {
            self.lambda.revert(id).await
        } else if change.action.starts_with("iam.") {
            self.iam.revert(id).await
        } else if change.action == "endpoint.sagemaker.delete" {
            self.endpoints.sagemaker.recreate(id).await
        } else {
            self.scaling.revert(id).await
        }
    }
}

/// `POST /functions/{name}/invocations`, and Lambda's own path so the AWS
/// CLI and SDKs can call local functions with `--endpoint-url`.
pub fn routes(hub: Arc<LambdaHub>) -> Router {
    Router::new()
        .route("/functions/{name}/invocations", post(invoke_route))
        .route("/2015-03-31/functions/{name}/invocations", post(invoke_route))
        .with_state(hub)
}

/// Lambda's error shape: the type in `x-amzn-ErrorType`, a JSON body.
fn lambda_error(status: StatusCode, kind: &str, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(kind) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

async fn invoke_route(State(hub): State<Arc<LambdaHub>>, Path(name): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let event = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(e) if e.status() == 413 => {
            return lambda_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException", serde_json::json!({ "Type": "User", "message": e.message() }))
        }
        Err(e) => return lambda_error(StatusCode::BAD_REQUEST, "InvalidRequestContentException", serde_json::json!({ "Type": "User", "message": e.message() })),
    };
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&event) {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            serde_json::json!({ "Type": "User", "message": format!("Could not parse request body into json: {e}") }),
        );
    }
    match hub.try_invoke_local(&name, event).await {
        Ok(Ok(i)) => {
            let mut r = ([(axum::http::header::CONTENT_TYPE, "application/json")], i.payload).into_response();
            let h = r.headers_mut();
            h.insert("x-amz-executed-version", HeaderValue::from_static("$LATEST"));
            if let Ok(v) = HeaderValue::from_str(&i.request_id) {
                h.insert("x-amzn-requestid", v);
            }
            if let Some(e) = i.function_error.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
                h.insert("x-amz-function-error", e);
            }
            if headers.get("x-amz-log-type").and_then(|v| v.to_str().ok()) == Some("Tail") {
                let tail = base64::engine::general_purpose::STANDARD.encode(i.log_tail.as_bytes());
                if let Ok(v) = HeaderValue::from_str(&tail) {
                    h.insert("x-amz-log-result", v);
                }
            }
            if let Some(init) = i.init {
                if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", init.as_secs_f64() * 1000.0)) {
                    h.insert("x-sagedeck-init-duration-ms", v);
                }
            }
            r
        }
        Ok(Err(why)) => lambda_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            serde_json::json!({
                "Reason": match why {
                    Throttled::Reserved(_) => "ReservedFunctionConcurrentInvocationLimitExceeded",
                    Throttled::Account(_) => "ConcurrentInvocationLimitExceeded",
                },
                "Type": "User",
                "message": "Rate Exceeded.",
                "detail": throttled(&name, &why).message(),
            }),
        ),
        Err(e @ ApiError::NotFound(_)) => lambda_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", serde_json::json!({ "Type": "User", "Message": e.message() })),
        Err(e) => lambda_error(e.http_status(), "ServiceException", serde_json::json!({ "Type": "Service", "Message": e.message() })),
    }
}
