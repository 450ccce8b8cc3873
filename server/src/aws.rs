//! Reaching AWS: one `SdkConfig` from the standard chain, the identity check
//! for the Overview, and the translation of SDK errors and times into ours.

use app::overview::AwsStatus;
use app::ApiError;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::DateTime;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a successful identity answer is reused, so page loads do not
/// each cost an STS call.
const IDENTITY_TTL: Duration = Duration::from_secs(60);

/// Whether to reach AWS (`--aws`, `SAGEDECK_AWS`): `auto` uses the standard
/// aws-config chain when it finds credentials and a region; `off` never calls AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AwsMode {
    Auto,
    Off,
}

/// AWS as this process found it at start-up.
pub struct Aws {
    /// `Ok` when a region and credentials were found; `Err` says why not.
    clients: Result<Clients, String>,
    identity: Mutex<Option<(Instant, AwsStatus)>>,
    calls: CallCounter,
    /// Operations this endpoint answered as not implemented, and the
    /// answer, until when (see [`Aws::remember_unsupported`]).
    unsupported: Mutex<std::collections::HashMap<&'static str, (Instant, ApiError)>>,
}

/// How long an operation answered as not implemented is not asked again:
/// the SDK retries such answers (a 5xx) four times, seconds per page view.
pub const UNSUPPORTED_FOR: Duration = Duration::from_secs(600);

/// Whether an error says the endpoint does not implement the operation:
/// HTTP 501 or NotImplemented, moto's "not yet implemented", or a 404 or
/// 500 without an error code (no service answers a real call that way).
pub fn is_not_implemented(error: &ApiError) -> bool {
    let m = error.message();
    m.contains("HTTP 501")
        || m.contains("NotImplemented")
        || m.contains("not yet implemented")
        || ((m.contains("HTTP 404") || m.contains("HTTP 500")) && m.contains("without an error code"))
}

/// One client per service, all built from the same `SdkConfig` and so sharing
/// its HTTP connection pool, retry and time-out settings.
pub struct Clients {
    pub config: SdkConfig,
    pub sts: aws_sdk_sts::Client,
    pub sagemaker: aws_sdk_sagemaker::Client,
    pub sagemaker_runtime: aws_sdk_sagemakerruntime::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub iam: aws_sdk_iam::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
    /// The Pricing API: in us-east-1 (or eu-central-1, ap-south-1) whatever the account's region.
    pub pricing: aws_sdk_pricing::Client,
}

impl Clients {
    fn new(config: SdkConfig, calls: &CallCounter) -> Self {
        // Every client counts its attempts (retries included) in `calls`.
        macro_rules! counted {
            ($sdk:ident) => {
                $sdk::Client::from_conf($sdk::config::Builder::from(&config).interceptor(calls.clone()).build())
            };
        }
        Self {
            sts: counted!(aws_sdk_sts),
            sagemaker: counted!(aws_sdk_sagemaker),
            sagemaker_runtime: counted!(aws_sdk_sagemakerruntime),
            cloudwatch: counted!(aws_sdk_cloudwatch),
            logs: counted!(aws_sdk_cloudwatchlogs),
            iam: counted!(aws_sdk_iam),
            autoscaling: counted!(aws_sdk_applicationautoscaling),
            lambda: counted!(aws_sdk_lambda),
            pricing: {
                let mut pricing = aws_sdk_pricing::config::Builder::from(&config).interceptor(calls.clone());
                let served = matches!(config.region().map(|r| r.as_ref()), Some("us-east-1" | "eu-central-1" | "ap-south-1"));
                if config.endpoint_url().is_none() && !served {
                    pricing = pricing.region(aws_sdk_pricing::config::Region::new("us-east-1"));
                }
                aws_sdk_pricing::Client::from_conf(pricing.build())
            },
            s3: {
                // Path-style addressing when an endpoint is configured (moto, an
                // S3-compatible store): `bucket.127.0.0.1` does not resolve.
                // Checksums only where S3 requires them: every upload sends
                // Content-MD5 instead, which S3 (and moto) verify.
                use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
                let s3 = aws_sdk_s3::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .force_path_style(config.endpoint_url().is_some())
                    .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                    .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
                aws_sdk_s3::Client::from_conf(s3.build())
            },
            config,
        }
    }
}

/// Counts the requests this process sends to AWS, per service and
/// operation: how the tests check that open tabs do not multiply AWS calls.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(std::sync::Arc<Mutex<std::collections::BTreeMap<String, u64>>>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "SagedeckCallCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let name = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| format!("{} {}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".into());
        *self.0.lock().expect("call counter").entry(name).or_insert(0) += 1;
        Ok(())
    }
}

impl Aws {
    /// Loads the standard chain (environment, shared config and credentials
    /// files, SSO, web identity, container and instance metadata) and checks
    /// that it yields a region and credentials. Never fails: a console without
    /// AWS still runs and says why.
    pub async fn connect(mode: AwsMode) -> Self {
        let config = match mode {
            AwsMode::Off => Err("AWS is turned off (--aws off / SAGEDECK_AWS=off).".to_string()),
            AwsMode::Auto => load().await,
        };
        match &config {
            Ok(c) => tracing::info!(region = ?c.region(), endpoint = ?c.endpoint_url(), "AWS configured"),
            Err(reason) => tracing::info!(%reason, "AWS: not configured"),
        }
        let calls = CallCounter::default();
        Self { clients: config.map(|c| Clients::new(c, &calls)), identity: Mutex::new(None), calls, unsupported: Mutex::new(Default::default()) }
    }

    /// The remembered answer when `operation` was answered as not implemented
    /// less than [`UNSUPPORTED_FOR`] ago: call it only when this is `None`.
    pub fn known_unsupported(&self, operation: &'static str) -> Option<ApiError> {
        let mut known = self.unsupported.lock().expect("unsupported operations");
        match known.get(operation) {
            Some((at, error)) if at.elapsed() < UNSUPPORTED_FOR => Some(error.clone()),
            Some(_) => {
                known.remove(operation);
                None
            }
            None => None,
        }
    }

    /// Notes `error` for `operation` when it says the operation is not
    /// implemented here; returns the error either way.
    pub fn remember_unsupported(&self, operation: &'static str, error: ApiError) -> ApiError {
        if is_not_implemented(&error) {
            tracing::info!(operation, "this AWS endpoint does not implement it; not asked again for {} min", UNSUPPORTED_FOR.as_secs() / 60);
            self.unsupported.lock().expect("unsupported operations").insert(operation, (Instant::now(), error.clone()));
        }
        error
    }

    /// Why AWS is not configured, `None` when it is.
    pub fn unconfigured_reason(&self) -> Option<&str> {
        self.clients.as_ref().err().map(String::as_str)
    }

    /// The clients, or a 503 that says what to configure.
    pub fn clients(&self) -> Result<&Clients, ApiError> {
        self.clients.as_ref().map_err(|reason| {
            ApiError::NotConfigured(format!(
                "AWS is not configured: {reason} This page needs an AWS account (or AWS_ENDPOINT_URL pointing at a test endpoint)."
            ))
        })
    }

    pub fn call_counts(&self) -> app::training::sagemaker::AwsCallCounts {
        let counts = self.calls.0.lock().expect("call counter");
        app::training::sagemaker::AwsCallCounts {
            total: counts.values().sum(),
            per_operation: counts.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// Live (with account and region), not configured, or unavailable (the
    /// identity call failed: network, credentials refused, throttled).
    pub async fn status(&self) -> AwsStatus {
        let clients = match &self.clients {
            Ok(c) => c,
            Err(reason) => return AwsStatus::NotConfigured { reason: reason.clone() },
        };
        if let Some((at, status)) = self.identity.lock().expect("identity cache").clone() {
            if at.elapsed() < IDENTITY_TTL {
                return status;
            }
        }
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_default();
        let endpoint = clients.config.endpoint_url().map(str::to_string);
        let status = match clients.sts.get_caller_identity().send().await {
            Ok(id) => AwsStatus::Live {
                account: id.account().unwrap_or_default().to_string(),
                arn: id.arn().unwrap_or_default().to_string(),
                region,
                endpoint,
            },
            Err(e) => AwsStatus::Unavailable {
                region,
                endpoint,
                reason: from_sdk("STS GetCallerIdentity", e).message().to_string(),
            },
        };
        if status.is_live() {
            *self.identity.lock().expect("identity cache") = Some((Instant::now(), status.clone()));
        }
        status
    }
}

async fn load() -> Result<SdkConfig, String> {
    // One rustls client with ring for every service (see Cargo.toml for why
    // not the SDK's default TLS stack).
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        // Adaptive mode slows our own request rate when AWS throttles,
        // instead of retrying into the same limit.
        .retry_config(RetryConfig::adaptive().with_max_attempts(4))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await;
    if config.region().is_none() {
        return Err(
            "no AWS region found. Set AWS_REGION, or a region in your profile (~/.aws/config).".to_string(),
        );
    }
    let Some(provider) = config.credentials_provider() else {
        return Err("no credentials provider is available.".to_string());
    };
    use aws_credential_types::provider::ProvideCredentials;
    match tokio::time::timeout(Duration::from_secs(10), provider.provide_credentials()).await {
        Err(_) => Err("looking for AWS credentials took longer than 10 s.".to_string()),
        Ok(Err(e)) => Err(format!(
            "no AWS credentials found in the standard chain (environment, profile, SSO, web identity, container, instance metadata): {e}."
        )),
        Ok(Ok(_)) => Ok(config),
    }
}

/// Turns an SDK error into words, keeping AWS's own message.
pub fn from_sdk<E>(operation: &str, err: SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let error = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            classify(operation, e.code(), e.message(), service.raw().status().as_u16())
        }
        SdkError::TimeoutError(_) => ApiError::Upstream(format!("{operation}: AWS did not answer in time.")),
        SdkError::DispatchFailure(_) => ApiError::Upstream(format!(
            "{operation}: could not reach AWS ({}).",
            DisplayErrorContext(&err)
        )),
        // An error body the SDK could not parse (moto answers JSON services
        // with XML when it refuses credentials): the HTTP status still says
        // what kind of error it was.
        SdkError::ResponseError(response) if response.raw().status().as_u16() >= 400 => classify(
            operation,
            None,
            Some("AWS refused the request and its error body could not be read"),
            response.raw().status().as_u16(),
        ),
        SdkError::ResponseError(_) => ApiError::Upstream(format!(
            "{operation}: AWS sent an answer Sagedeck could not read ({}).",
            DisplayErrorContext(&err)
        )),
        _ => ApiError::Internal(format!("{operation}: {}", DisplayErrorContext(&err))),
    };
    tracing::warn!(operation, error = %DisplayErrorContext(&err), "AWS call failed");
    error
}

/// Classifies an AWS error by its code, or by the HTTP status when the answer
/// carried no code Sagedeck could read. Codes differ per service (SageMaker
/// says ThrottlingException, IAM says Throttling), so each family lists them.
pub fn classify(operation: &str, code: Option<&str>, message: Option<&str>, http_status: u16) -> ApiError {
    let message = message.filter(|m| !m.is_empty());
    let text = match (code, message) {
        (Some(c), Some(m)) => format!("{operation}: {m} ({c})"),
        (Some(c), None) => format!("{operation}: AWS answered {c}"),
        (None, Some(m)) => format!("{operation}: {m} (HTTP {http_status})"),
        (None, None) => format!("{operation}: AWS answered HTTP {http_status} without an error code"),
    };
    let throttled = |text: String| {
        ApiError::Throttled(format!(
            "{text}. AWS is limiting the request rate; Sagedeck already retried. Wait a moment and try again."
        ))
    };
    let Some(code) = code else {
        return match http_status {
            401 | 403 => ApiError::AccessDenied(text),
            404 => ApiError::NotFound(text),
            409 => ApiError::Conflict(text),
            429 => throttled(text),
            400..=499 => ApiError::Invalid(text),
            _ => ApiError::Upstream(text),
        };
    };
    let message = message.unwrap_or_default();
    match code {
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded"
        | "SlowDown" | "ProvisionedThroughputExceededException" => throttled(text),
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" | "UnrecognizedClientException"
        | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" | "ExpiredTokenException"
        | "InvalidSignatureException" | "MissingAuthenticationToken" | "AllAccessDisabled" | "InvalidAccessKeyId" => {
            ApiError::AccessDenied(text)
        }
        "ResourceNotFound" | "ResourceNotFoundException" | "NoSuchEntity" | "NotFoundException" | "ObjectNotFoundException"
        | "NoSuchBucket" | "NoSuchKey" | "NoSuchUpload" => {
            ApiError::NotFound(text)
        }
        // SageMaker reports missing notebooks and jobs as a ValidationException.
        "ValidationException" | "ValidationError"
            if message.contains("RecordNotFound") || message.contains("does not exist") || message.contains("Could not find") =>
        {
            ApiError::NotFound(text)
        }
        "ValidationException" | "ValidationError" | "InvalidParameterValueException" | "InvalidInput"
        | "MalformedPolicyDocument" | "InvalidBucketName" | "InvalidArgument" | "InvalidRequest" => ApiError::Invalid(text),
        "ResourceInUse" | "ConflictException" | "ResourceConflictException" | "ResourceLimitExceeded" | "ConcurrentUpdateException"
        | "LimitExceeded" | "LimitExceededException" | "EntityAlreadyExists" => ApiError::Conflict(text),
        _ => ApiError::Upstream(text),
    }
}

/// A creation time as the cache keys it: milliseconds, so it sorts as text
/// with the local jobs' times (migrations/README.md).
pub fn created_key(t: &DateTime) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos())
        .ok()
        .and_then(|t| t.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z")).ok())
        .unwrap_or_default()
}

/// An SDK time as RFC 3339, as the pages show it.
pub fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_of_every_service_become_429() {
        for code in ["ThrottlingException", "Throttling", "TooManyRequestsException"] {
            let e = classify("ListNotebookInstances", Some(code), Some("Rate exceeded"), 400);
            assert_eq!(e.status(), 429, "{code}");
            assert!(e.message().contains("Rate exceeded"));
            assert!(e.message().contains("try again"));
        }
    }

    #[test]
    fn access_denied_keeps_aws_words() {
        let e = classify(
            "StopNotebookInstance",
            Some("AccessDeniedException"),
            Some("User: arn:aws:iam::1:user/x is not authorized to perform: sagemaker:StopNotebookInstance"),
            400,
        );
        assert_eq!(e.status(), 403);
        assert!(e.message().starts_with("StopNotebookInstance: User:"));
        assert!(e.message().ends_with("(AccessDeniedException)"));
    }

    #[test]
    fn sagemaker_record_not_found_is_404_other_validation_is_400() {
        let e = classify("DescribeNotebookInstance", Some("ValidationException"), Some("RecordNotFound"), 400);
        assert_eq!(e.status(), 404);
        let e = classify("StopNotebookInstance", Some("ValidationException"), Some("Status (Stopped) not in ([InService])"), 400);
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn unknown_codes_are_upstream_errors_with_the_code() {
        let e = classify("X", Some("InternalFailure"), None, 500);
        assert_eq!(e.status(), 502);
        assert_eq!(e.message(), "X: AWS answered InternalFailure");
    }

    #[test]
    fn without_a_code_the_http_status_decides() {
        let e = classify("X", None, None, 403);
        assert_eq!(e.status(), 403);
        assert!(e.message().contains("HTTP 403"));
        assert_eq!(classify("X", None, Some("slow down"), 429).status(), 429);
        assert_eq!(classify("X", None, None, 503).status(), 502);
    }

    #[tokio::test]
    async fn an_operation_answered_as_not_implemented_is_remembered() {
        let aws = Aws::connect(AwsMode::Off).await;
        assert!(aws.known_unsupported("X Op").is_none());
        let not_implemented = classify("X Op", None, None, 500);
        assert!(is_not_implemented(&not_implemented));
        aws.remember_unsupported("X Op", not_implemented.clone());
        assert_eq!(aws.known_unsupported("X Op"), Some(not_implemented));
        // A real refusal is not remembered.
        let denied = classify("Y Op", Some("AccessDeniedException"), Some("no"), 400);
        assert!(!is_not_implemented(&denied));
        aws.remember_unsupported("Y Op", denied);
        assert!(aws.known_unsupported("Y Op").is_none());
        assert!(is_not_implemented(&classify("Z", Some("NotImplemented"), Some("x"), 501)));
    }

    #[tokio::test]
    async fn off_mode_is_not_configured_and_says_why() {
        let aws = Aws::connect(AwsMode::Off).await;
        match aws.status().await {
            AwsStatus::NotConfigured { reason } => assert!(reason.contains("--aws off")),
            other => panic!("expected NotConfigured, got {other:?}"),
        }
        let err = aws.clients().err().unwrap();
        assert_eq!(err.status(), 503);
    }
}
