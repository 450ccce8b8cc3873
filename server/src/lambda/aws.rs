//! AWS Lambda: list, describe with concurrency, reserved and provisioned
//! concurrency, test invocations with the log tail, and the set-up of the
//! endpoint's function with a least-privilege execution role.

use crate::aws::{from_sdk, Aws};
use app::lambda::{
    AccountConcurrency, FnHome, FunctionDetail, FunctionSummary, InvokeOutcome, LambdaSetupSpec, ProvisionedConfig,
};
use app::ApiError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, FunctionConfiguration, LogType, Runtime};
use base64::Engine;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The seeds' handler, shipped with Sagedeck (see server/lambda/handler.py).
pub const HANDLER_SOURCE: &str = include_str!("../../lambda/handler.py");
pub const HANDLER: &str = "handler.lambda_handler";
/// The name of the role's one inline policy.
pub use app::iam::fix::SCOPED_POLICY_NAME as POLICY_NAME;

pub struct AwsLambda {
    aws: Arc<Aws>,
}

/// The trust policy of the function's role: only Lambda may assume it.
pub const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

pub use app::iam::fix::lambda_scoped_policy as scoped_policy;

/// The deployment package: handler.py in a zip.
pub fn package() -> Result<Vec<u8>, ApiError> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).unix_permissions(0o644);
    let fail = |e: &dyn std::fmt::Display| ApiError::Internal(format!("building the deployment package: {e}"));
    zip.start_file("handler.py", options).map_err(|e| fail(&e))?;
    zip.write_all(HANDLER_SOURCE.as_bytes()).map_err(|e| fail(&e))?;
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}

/// Errors an AWS endpoint answers for operations it does not implement
/// (moto, LocalStack's free tier) become a plain sentence.
fn unsupported(what: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::Upstream(m) | ApiError::NotFound(m) | ApiError::Internal(m)
            if m.contains("HTTP 404") || m.contains("HTTP 500") || m.contains("HTTP 501") || m.contains("not yet implemented") || m.contains("NotImplemented") =>
        {
            ApiError::Upstream(format!("{what} is not supported by this AWS endpoint ({m})"))
        }
        other => other,
    }
}

impl AwsLambda {
    pub fn new(aws: Arc<Aws>) -> Self {
        Self { aws }
    }

    fn client(&self) -> Result<&aws_sdk_lambda::Client, ApiError> {
        Ok(&self.aws.clients()?.lambda)
    }

    fn summary(c: &FunctionConfiguration, reserved: Option<u32>) -> FunctionSummary {
        FunctionSummary {
            name: c.function_name().unwrap_or_default().to_string(),
            home: FnHome::Aws,
            runtime: c.runtime().map(|r| r.as_str().to_string()).unwrap_or_else(|| "container image".into()),
            endpoint: c.environment().and_then(|e| e.variables()).and_then(|v| v.get("ENDPOINT_NAME").cloned()),
            reserved,
            last_modified: c.last_modified().map(str::to_string),
        }
    }

    pub async fn reserved(&self, name: &str) -> Result<Option<u32>, ApiError> {
        let out = self
            .client()?
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .map_err(|e| from_sdk("Lambda GetFunctionConcurrency", e))?;
        Ok(out.reserved_concurrent_executions().map(|r| r.max(0) as u32))
    }

    pub async fn list(&self) -> Result<Vec<FunctionSummary>, ApiError> {
        let client = self.client()?;
        let mut pages = client.list_functions().into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(f) = pages.next().await {
            let f = f.map_err(|e| from_sdk("Lambda ListFunctions", e))?;
            // Reserved concurrency is not in the list: asked for the first few.
            let reserved = if out.len() < 20 { self.reserved(f.function_name().unwrap_or_default()).await.ok().flatten() } else { None };
            out.push(Self::summary(&f, reserved));
        }
        Ok(out)
    }

    pub async fn account(&self) -> Option<AccountConcurrency> {
        let out = self.client().ok()?.get_account_settings().send().await.ok()?;
        let limit = out.account_limit()?;
        Some(AccountConcurrency {
            limit: limit.concurrent_executions().max(0) as u32,
            unreserved: limit.unreserved_concurrent_executions().unwrap_or(limit.concurrent_executions()).max(0) as u32,
        })
    }

    /// The provisioned configurations, or why they cannot be read.
    pub async fn provisioned(&self, name: &str) -> Result<Vec<ProvisionedConfig>, ApiError> {
        const OPERATION: &str = "Lambda ListProvisionedConcurrencyConfigs";
        if let Some(known) = self.aws.known_unsupported(OPERATION) {
            return Err(unsupported("Provisioned concurrency", known));
        }
        let out = self
            .client()?
            .list_provisioned_concurrency_configs()
            .function_name(name)
            .send()
            .await
            .map_err(|e| unsupported("Provisioned concurrency", self.aws.remember_unsupported(OPERATION, from_sdk(OPERATION, e))))?;
        Ok(out
            .provisioned_concurrency_configs()
            .iter()
            .map(|p| ProvisionedConfig {
                qualifier: p.function_arn().and_then(|a| a.rsplit(':').next()).unwrap_or_default().to_string(),
                requested: p.requested_provisioned_concurrent_executions().unwrap_or(0).max(0) as u32,
                available: p.available_provisioned_concurrent_executions().map(|v| v.max(0) as u32),
                status: p.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: p.status_reason().map(str::to_string),
            })
            .collect())
    }

    /// The function's metrics from CloudWatch (namespace AWS/Lambda,
    /// dimension FunctionName), as the Lambda console charts them.
    pub async fn metrics(&self, name: &str, window: app::endpoints::MetricWindow) -> Result<Vec<app::endpoints::MetricSeries>, ApiError> {
        use crate::cloudwatch::{statistics, wanted};
        use aws_sdk_cloudwatch::types::Statistic;
        statistics(
            &self.aws.clients()?.cloudwatch,
            "AWS/Lambda",
            &[("FunctionName", name)],
            &[
                wanted("Invocations", Statistic::Sum, "Count"),
                wanted("Errors", Statistic::Sum, "Count"),
                wanted("Throttles", Statistic::Sum, "Count"),
                wanted("Duration", Statistic::Average, "Milliseconds"),
                wanted("ConcurrentExecutions", Statistic::Maximum, "Count"),
            ],
            window,
        )
        .await
    }

    pub async fn describe(&self, name: &str) -> Result<FunctionDetail, ApiError> {
        let client = self.client()?;
        let f = client.get_function().function_name(name).send().await.map_err(|e| from_sdk("Lambda GetFunction", e))?;
        let config = f.configuration().ok_or_else(|| ApiError::Upstream("Lambda GetFunction answered without a configuration".into()))?;
        let reserved = f.concurrency().and_then(|c| c.reserved_concurrent_executions()).map(|r| r.max(0) as u32);
        let mut qualifiers = Vec::new();
        if let Ok(v) = client.list_versions_by_function().function_name(name).send().await {
            qualifiers.extend(v.versions().iter().filter_map(|v| v.version()).filter(|v| *v != "$LATEST").map(str::to_string));
        }
        if let Ok(a) = client.list_aliases().function_name(name).send().await {
            qualifiers.extend(a.aliases().iter().filter_map(|a| a.name()).map(str::to_string));
        }
        let (provisioned, provisioned_note, provisioned_supported) = match self.provisioned(name).await {
            Ok(p) => (p, None, true),
            Err(e) => {
                let supported = !e.message().contains("not supported by this AWS endpoint");
                (Vec::new(), Some(e.message().to_string()), supported)
            }
        };
        let account = self.account().await;
        let summary = Self::summary(config, reserved);
        Ok(FunctionDetail {
            arn: config.function_arn().map(str::to_string),
            role: config.role().map(str::to_string),
            handler: config.handler().map(str::to_string),
            memory_mb: config.memory_size().map(|m| m.max(0) as u32),
            timeout_s: config.timeout().map(|t| t.max(0) as u32),
            environment: config
                .environment()
                .and_then(|e| e.variables())
                .map(|v| {
                    let mut kv: Vec<(String, String)> = v.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    kv.sort();
                    kv
                })
                .unwrap_or_default(),
            qualifiers,
            facts: app::lambda::CapacityFacts {
                reserved,
                provisioned_total: provisioned.iter().map(|p| p.requested).sum(),
                account,
                endpoint: summary.endpoint.clone(),
                ..Default::default()
            },
            provisioned,
            provisioned_note,
            provisioned_supported,
            summary,
            in_flight: None,
            peak_in_flight: None,
            warm: None,
            recent_log: Vec::new(),
        })
    }

    pub async fn set_reserved(&self, name: &str, value: Option<u32>) -> Result<(), ApiError> {
        let client = self.client()?;
        match value {
            Some(v) => client
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(v as i32)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| from_sdk("Lambda PutFunctionConcurrency", e)),
            None => client
                .delete_function_concurrency()
                .function_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| from_sdk("Lambda DeleteFunctionConcurrency", e)),
        }
    }

    pub async fn set_provisioned(&self, name: &str, qualifier: &str, value: Option<u32>) -> Result<(), ApiError> {
        let client = self.client()?;
        let result = match value {
            Some(v) => client
                .put_provisioned_concurrency_config()
                .function_name(name)
                .qualifier(qualifier)
                .provisioned_concurrent_executions(v as i32)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| from_sdk("Lambda PutProvisionedConcurrencyConfig", e)),
            None => client
                .delete_provisioned_concurrency_config()
                .function_name(name)
                .qualifier(qualifier)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| from_sdk("Lambda DeleteProvisionedConcurrencyConfig", e)),
        };
        result.map_err(|e| unsupported("Provisioned concurrency", e))
    }

    pub async fn invoke(&self, name: &str, event: &str) -> Result<InvokeOutcome, ApiError> {
        let started = Instant::now();
        let out = self
            .client()?
            .invoke()
            .function_name(name)
            .log_type(LogType::Tail)
            .payload(Blob::new(event.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk("Lambda Invoke", e))?;
        let log_tail = out
            .log_result()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(InvokeOutcome {
            status_code: out.status_code().clamp(0, 999) as u16,
            payload: out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()).unwrap_or_default(),
            function_error: out.function_error().map(str::to_string),
            log_tail,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.client()?
            .delete_function()
            .function_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("Lambda DeleteFunction", e))
    }

    /// Deletes what the set-up made: the function, the role's inline policy, the role.
    pub async fn teardown(&self, function: &str, role: &str) -> Result<(), ApiError> {
        let clients = self.aws.clients()?;
        match clients.lambda.delete_function().function_name(function).send().await.map_err(|e| from_sdk("Lambda DeleteFunction", e)) {
            Ok(_) | Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        match clients.iam.delete_role_policy().role_name(role).policy_name(POLICY_NAME).send().await.map_err(|e| from_sdk("IAM DeleteRolePolicy", e)) {
            Ok(_) | Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        match clients.iam.delete_role().role_name(role).send().await.map_err(|e| from_sdk("IAM DeleteRole", e)) {
            Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Role, scoped inline policy, function. Each step that succeeded is
    /// undone when a later one fails; the steps taken come back in words.
    pub async fn setup(&self, spec: &LambdaSetupSpec, endpoint_arn: &str) -> Result<(String, String, Vec<String>), ApiError> {
        let clients = self.aws.clients()?;
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_default();
        // arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME
        let account = endpoint_arn.split(':').nth(4).unwrap_or_default().to_string();
        let role_name = format!("{}-role", spec.function_name).chars().take(64).collect::<String>();
        let policy = serde_json::to_string_pretty(&scoped_policy(endpoint_arn, &region, &account, &spec.function_name)).unwrap_or_default();
        let mut steps = Vec::new();
        let role = clients
            .iam
            .create_role()
            .role_name(&role_name)
            .assume_role_policy_document(TRUST_POLICY)
            .description(format!("Sagedeck: the Lambda in front of SageMaker endpoint {}", spec.endpoint))
            .send()
            .await
            .map_err(|e| from_sdk("IAM CreateRole", e))?;
        let role_arn = role.role().map(|r| r.arn().to_string()).unwrap_or_default();
        steps.push(format!("created role {role_name} (trusted by lambda.amazonaws.com only)"));
        let undo_role = || async {
            let _ = clients.iam.delete_role_policy().role_name(&role_name).policy_name(POLICY_NAME).send().await;
            let _ = clients.iam.delete_role().role_name(&role_name).send().await;
        };
        if let Err(e) = clients
            .iam
            .put_role_policy()
            .role_name(&role_name)
            .policy_name(POLICY_NAME)
            .policy_document(&policy)
            .send()
            .await
        {
            undo_role().await;
            return Err(rolled_back(from_sdk("IAM PutRolePolicy", e), "the role was deleted again"));
        }
        steps.push("put the inline policy invoke-one-endpoint: sagemaker:InvokeEndpoint on this endpoint, logs of this function".into());
        let code = FunctionCode::builder().zip_file(Blob::new(package()?)).build();
        let environment = Environment::builder().variables("ENDPOINT_NAME", &spec.endpoint).build();
        // A new role takes a few seconds to reach Lambda: it answers
        // "cannot be assumed" meanwhile, so that error is retried for 20 s.
        let deadline = Instant::now() + Duration::from_secs(20);
        let created = loop {
            let attempt = clients
                .lambda
                .create_function()
                .function_name(&spec.function_name)
                .runtime(Runtime::Python312)
                .role(&role_arn)
                .handler(HANDLER)
                .code(code.clone())
                .environment(environment.clone())
                .memory_size(spec.memory_mb as i32)
                .timeout(spec.timeout_s as i32)
                .description(format!("Sagedeck: forwards events to SageMaker endpoint {}", spec.endpoint))
                .send()
                .await
                .map_err(|e| from_sdk("Lambda CreateFunction", e));
            match attempt {
                Err(ApiError::Invalid(m)) if m.contains("cannot be assumed") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                other => break other,
            }
        };
        if let Err(e) = created {
            undo_role().await;
            return Err(rolled_back(e, "the role and its policy were deleted again"));
        }
        steps.push(format!("created function {} (python3.12, {HANDLER}, ENDPOINT_NAME={})", spec.function_name, spec.endpoint));
        Ok((role_arn, policy, steps))
    }
}

fn rolled_back(e: ApiError, undone: &str) -> ApiError {
    let m = format!("{} Nothing was left behind: {undone}.", e.message());
    match e {
        ApiError::Invalid(_) => ApiError::Invalid(m),
        ApiError::AccessDenied(_) => ApiError::AccessDenied(m),
        ApiError::Conflict(_) => ApiError::Conflict(m),
        ApiError::Throttled(_) => ApiError::Throttled(m),
        _ => ApiError::Upstream(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scoped_policy_names_one_endpoint_and_its_own_logs() {
        let p = scoped_policy("arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs", "us-east-1", "123456789012", "dogs-invoke");
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Action"], "sagemaker:InvokeEndpoint");
        assert_eq!(statements[0]["Resource"], "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs");
        let text = p.to_string();
        assert!(!text.contains("\"*\""), "no wildcard resource: {text}");
        assert!(text.contains("log-group:/aws/lambda/dogs-invoke"));
    }

    #[test]
    fn the_package_is_a_zip_with_the_handler() {
        let bytes = package().unwrap();
        assert_eq!(&bytes[..2], b"PK");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("handler.py") && text.contains("def lambda_handler"));
    }
}
