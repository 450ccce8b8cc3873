//! SageMaker endpoints: list, describe, deploy from a training job's model
//! artifact, delete, invoke through sagemaker-runtime, and CloudWatch metrics.

use crate::aws::{from_sdk, rfc3339, Aws};
use super::cache::EndpointCache;
use super::describe::describe_endpoint;
use crate::journal::{Change, Journal};
use app::endpoints::{
    DeployableJob, EndpointDetail, MetricSeries, MetricWindow, SageMakerDeploySpec,
};
use app::overview::ChangeRecord;
use app::ApiError;
use aws_sdk_cloudwatch::types::Statistic;
use aws_sdk_sagemaker::types::{
    ContainerDefinition, ProductionVariant, ProductionVariantInstanceType, SortBy, TrainingJobStatus,
};
use crate::s3::S3Uri;
use crate::training::sagemaker_code;
use axum::body::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The variant name SageMaker's SDKs use when there is one.
pub const VARIANT: &str = "AllTraffic";

pub struct SageMakerEndpoints {
    pub(super) aws: Arc<Aws>,
    journal: Journal,
    /// What the list shows: every DescribeEndpoint here writes to it.
    pub cache: Arc<EndpointCache>,
}

/// The AWS Deep Learning Containers PyTorch inference image of a region,
/// the image the seeds' PyTorchModel deploys with.
pub fn pytorch_inference_image(region: &str) -> String {
    format!("763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.5-cpu-py311")
}

/// The model's container as the SageMaker Python SDK's PyTorchModel sets
/// it: the handler in the model's code/ folder, the region, the toolkit's
/// log level.
pub fn inference_container(image: &str, artifact: &str, region: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .image(image)
        .model_data_url(artifact)
        .environment("SAGEMAKER_PROGRAM", "inference.py")
        .environment("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/model/code")
        .environment("SAGEMAKER_CONTAINER_LOG_LEVEL", "20")
        .environment("SAGEMAKER_REGION", region)
        .build()
}

impl SageMakerEndpoints {
    pub fn new(aws: Arc<Aws>, journal: Journal, pool: sqlx::SqlitePool) -> Self {
        let cache = EndpointCache::start(pool, aws.clone());
        Self { aws, journal, cache }
    }

    /// Why SageMaker endpoints cannot be listed (AWS not configured), if so.
    pub fn aws_note(&self) -> Option<String> {
        self.aws.clients().err().map(|e| e.message().to_string())
    }

    pub(super) fn sm(&self) -> Result<&aws_sdk_sagemaker::Client, ApiError> {
        Ok(&self.aws.clients()?.sagemaker)
    }

    /// DescribeEndpoint(+Config), written to the list's cache as well.
    pub async fn describe(&self, name: &str) -> Result<EndpointDetail, ApiError> {
        match describe_endpoint(self.sm()?, name).await {
            Ok(d) => {
                self.cache.store(&d).await?;
                Ok(d.detail)
            }
            Err(e) => {
                if matches!(e, ApiError::NotFound(_)) {
                    self.cache.forget(name).await?;
                }
                Err(e)
            }
        }
    }
}

impl SageMakerEndpoints {
    pub async fn deployable_jobs(&self) -> Result<Vec<DeployableJob>, ApiError> {
        let client = self.sm()?;
        let list = client
            .list_training_jobs()
            .status_equals(TrainingJobStatus::Completed)
            .sort_by(SortBy::CreationTime)
            .sort_order(aws_sdk_sagemaker::types::SortOrder::Descending)
            .max_results(20)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker ListTrainingJobs", e))?;
        let mut out = Vec::new();
        for job in list.training_job_summaries() {
            let Some(name) = job.training_job_name() else { continue };
            let d = client
                .describe_training_job()
                .training_job_name(name)
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker DescribeTrainingJob", e))?;
            let Some(artifact) = d.model_artifacts().and_then(|a| a.s3_model_artifacts()) else { continue };
            out.push(DeployableJob {
                name: name.to_string(),
                model_artifact: artifact.to_string(),
                role_arn: d.role_arn().unwrap_or_default().to_string(),
                finished_at: rfc3339(d.training_end_time()),
            });
        }
        Ok(out)
    }

    /// A completed training job's model.tar.gz and the role it ran as.
    pub async fn job_model(&self, training_job: &str) -> Result<(String, String), ApiError> {
        let job = self
            .sm()?
            .describe_training_job()
            .training_job_name(training_job)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeTrainingJob", e))?;
        if job.training_job_status() != Some(&TrainingJobStatus::Completed) {
            return Err(ApiError::Conflict(format!(
                "training job {training_job} is {}, not Completed: only a completed job has a model to deploy",
                job.training_job_status().map(|s| s.as_str()).unwrap_or("in an unknown state")
            )));
        }
        let artifact = job
            .model_artifacts()
            .and_then(|a| a.s3_model_artifacts())
            .ok_or_else(|| ApiError::Conflict(format!("training job {training_job} left no model artifact")))?
            .to_string();
        Ok((artifact, job.role_arn().unwrap_or_default().to_string()))
    }

    /// A training job's model.tar.gz, downloaded and unpacked under
    /// `imports` for a local endpoint. Kept while its S3 object is unchanged
    /// (same ETag); a failed import leaves nothing behind.
    pub async fn import_model(&self, training_job: &str, imports: &Path) -> Result<PathBuf, ApiError> {
        let (artifact, _) = self.job_model(training_job).await?;
        let at = S3Uri::parse(&artifact)?;
        let s3 = &self.aws.clients()?.s3;
        let etag = s3
            .head_object()
            .bucket(&at.bucket)
            .key(&at.key)
            .send()
            .await
            .map_err(|e| from_sdk("S3 HeadObject", e).map_message(|m| format!("the model artifact {artifact} cannot be read: {m}")))?
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let dir = imports.join(training_job);
        let marker = dir.join(".source");
        let stamp = format!("{artifact} {etag}");
        if std::fs::read_to_string(&marker).is_ok_and(|s| s == stamp) {
            return Ok(dir);
        }
        let io = |e: std::io::Error| ApiError::Internal(format!("cannot write under {}: {e}", imports.display()));
        tokio::fs::create_dir_all(imports).await.map_err(io)?;
        let download = imports.join(format!(".{training_job}.tar.gz.part"));
        let unpacked = imports.join(format!(".{training_job}.unpacking"));
        let _ = tokio::fs::remove_dir_all(&unpacked).await;
        let result: Result<(), ApiError> = async {
            crate::s3::download(s3, &at, &download, sagemaker_code::MAX_UNPACKED_BYTES).await?;
            let (from, to) = (download.clone(), unpacked.clone());
            tokio::task::spawn_blocking(move || sagemaker_code::unpack_model(&from, &to))
                .await
                .map_err(|e| ApiError::Internal(format!("unpacking crashed: {e}")))?
                .map_err(|e| ApiError::Unprocessable(format!("{artifact}: {e}")))?;
            crate::endpoints::serving::ModelInfo::read(&unpacked)
                .map_err(|e| ApiError::Unprocessable(format!("{artifact} is not a model a local endpoint can serve: {e}")))?;
            std::fs::write(unpacked.join(".source"), &stamp).map_err(io)?;
            let _ = tokio::fs::remove_dir_all(&dir).await;
            tokio::fs::rename(&unpacked, &dir).await.map_err(io)?;
            Ok(())
        }
        .await;
        let _ = tokio::fs::remove_file(&download).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&unpacked).await;
            return Err(e);
        }
        Ok(dir)
    }

    /// CreateModel → CreateEndpointConfig → CreateEndpoint from a training
    /// job's model artifact.
    pub async fn deploy(&self, spec: &SageMakerDeploySpec) -> Result<EndpointDetail, ApiError> {
        let (artifact, job_role) = match self.job_model(&spec.training_job).await {
            Ok(found) => found,
            Err(e) => {
                self.journal_create(spec, None, &Err(e.clone())).await;
                return Err(e);
            }
        };
        let role = if spec.role_arn.is_empty() { job_role } else { spec.role_arn.clone() };
        self.create_from(spec, &artifact, &role, None).await
    }

    /// CreateModel → CreateEndpointConfig → CreateEndpoint serving the
    /// model.tar.gz at `artifact`. A step that fails deletes what the earlier
    /// steps made, and so does the model.tar.gz Sagedeck `uploaded` for it;
    /// the error says what was undone.
    pub async fn create_from(&self, spec: &SageMakerDeploySpec, artifact: &str, role: &str, uploaded: Option<&S3Uri>) -> Result<EndpointDetail, ApiError> {
        let clients = self.aws.clients()?;
        let client = &clients.sagemaker;
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        let image = if spec.image.trim().is_empty() { pytorch_inference_image(&region) } else { spec.image.trim().to_string() };
        let model_name = format!("{}-model", spec.name);
        let config_name = format!("{}-config", spec.name);
        let container = inference_container(&image, artifact, &region);

        let mut made: Vec<&str> = Vec::new();
        let result: Result<(), ApiError> = async {
            client
                .create_model()
                .model_name(&model_name)
                .execution_role_arn(role)
                .primary_container(container)
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker CreateModel", e))?;
            made.push("model");
            client
                .create_endpoint_config()
                .endpoint_config_name(&config_name)
                .production_variants(
                    ProductionVariant::builder()
                        .variant_name(VARIANT)
                        .model_name(&model_name)
                        .instance_type(ProductionVariantInstanceType::from(spec.instance_type.as_str()))
                        .initial_instance_count(spec.instance_count as i32)
                        .initial_variant_weight(1.0)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker CreateEndpointConfig", e))?;
            made.push("config");
            client
                .create_endpoint()
                .endpoint_name(&spec.name)
                .endpoint_config_name(&config_name)
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker CreateEndpoint", e))?;
            Ok(())
        }
        .await;
        let result = match result {
            Ok(()) => Ok(()),
            Err(error) => {
                let mut undone = Vec::new();
                if made.contains(&"config") && client.delete_endpoint_config().endpoint_config_name(&config_name).send().await.is_ok() {
                    undone.push(format!("endpoint configuration {config_name}"));
                }
                if made.contains(&"model") && client.delete_model().model_name(&model_name).send().await.is_ok() {
                    undone.push(format!("model {model_name}"));
                }
                if let Some(at) = uploaded {
                    if crate::s3::delete(&clients.s3, at).await.is_ok() {
                        undone.push(format!("the model.tar.gz it uploaded ({at})"));
                    }
                }
                Err(if undone.is_empty() {
                    error
                } else {
                    error.map_message(|m| format!("{m} Sagedeck deleted what it had made: {}.", undone.join(" and ")))
                })
            }
        };
        let made = format!(
            "model {model_name} ({image}, {artifact}) → config {config_name} ({} × {}) → endpoint {}",
            spec.instance_count, spec.instance_type, spec.name
        );
        self.journal_create(spec, result.as_ref().ok().map(|_| made), &result).await;
        result?;
        self.describe(&spec.name).await
    }

    pub async fn journal_create(&self, spec: &SageMakerDeploySpec, after: Option<String>, result: &Result<(), ApiError>) {
        self.journal
            .record(Change {
                backend: "aws",
                action: "endpoint.sagemaker.create",
                target: &spec.name,
                before: None,
                after,
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
    }

    /// Packs a local job's artifact as model.tar.gz and puts it at
    /// `<model_s3>/<endpoint>/model.tar.gz`.
    pub async fn upload_local_model(&self, artifact_dir: &Path, spec: &SageMakerDeploySpec) -> Result<S3Uri, ApiError> {
        let s3 = &self.aws.clients()?.s3;
        let at = S3Uri::parse(spec.model_s3.trim())?.join(&format!("{}/model.tar.gz", spec.name));
        let dir = artifact_dir.to_path_buf();
        let packed = tokio::task::spawn_blocking(move || sagemaker_code::pack_model(&dir))
            .await
            .map_err(|e| ApiError::Internal(format!("packing crashed: {e}")))?
            .map_err(ApiError::Conflict)?;
        crate::s3::put(s3, &at, packed, "application/gzip")
            .await
            .map_err(|e| e.map_message(|m| format!("the packed model could not be put at {at}, so nothing was created: {m}")))?;
        Ok(at)
    }

    pub async fn delete(&self, name: &str, with_config: bool) -> Result<(), ApiError> {
        let client = self.sm()?;
        let before = self.describe(name).await?;
        let mut deleted = vec![format!("endpoint {name}")];
        let result: Result<(), ApiError> = async {
            client.delete_endpoint().endpoint_name(name).send().await.map_err(|e| from_sdk("SageMaker DeleteEndpoint", e))?;
            self.cache.deleting(name).await?;
            if with_config {
                if let Some(config) = &before.config_name {
                    client
                        .delete_endpoint_config()
                        .endpoint_config_name(config)
                        .send()
                        .await
                        .map_err(|e| from_sdk("SageMaker DeleteEndpointConfig", e))?;
                    deleted.push(format!("config {config}"));
                }
                for model in before.variants.iter().map(|v| &v.model).filter(|m| !m.is_empty()) {
                    client.delete_model().model_name(model).send().await.map_err(|e| from_sdk("SageMaker DeleteModel", e))?;
                    deleted.push(format!("model {model}"));
                }
            }
            Ok(())
        }
        .await;
        self.journal
            .record(Change {
                backend: "aws",
                action: "endpoint.sagemaker.delete",
                target: name,
                // What a revert needs: the configuration to create it from, and
                // whether that configuration is still there.
                before: Some(
                    serde_json::json!({
                        "status": before.summary.status,
                        "instances": before.summary.instances,
                        "instance_type": before.summary.instance_type,
                        "config": before.config_name,
                    })
                    .to_string(),
                ),
                after: Some(serde_json::json!({ "deleted": deleted, "config_kept": !with_config && before.config_name.is_some() }).to_string()),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result
    }

    /// Undoes a journaled deletion that kept the endpoint configuration:
    /// CreateEndpoint from that configuration, journaled as the revert.
    pub async fn recreate(&self, id: i64) -> Result<ChangeRecord, ApiError> {
        let change = self.journal.get(id).await?;
        if change.action != "endpoint.sagemaker.delete" || !change.revertible {
            let why = match change.reverted_by {
                Some(by) => format!("it was already reverted by #{by}"),
                None if change.outcome != "ok" => "it failed, so there is nothing to undo".into(),
                None => "its endpoint configuration was deleted with it".into(),
            };
            return Err(ApiError::Conflict(format!("change #{id} cannot be reverted: {why}")));
        }
        let before: serde_json::Value = serde_json::from_str(change.before.as_deref().unwrap_or("null"))
            .map_err(|e| ApiError::Internal(format!("change #{id} has an unreadable before-state: {e}")))?;
        let config = before["config"].as_str().ok_or_else(|| ApiError::Conflict(format!("change #{id} names no endpoint configuration")))?;
        let name = change.target.as_str();
        let result = self
            .sm()?
            .create_endpoint()
            .endpoint_name(name)
            .endpoint_config_name(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("SageMaker CreateEndpoint", e));
        let record = Change {
            backend: "aws",
            action: "endpoint.sagemaker.create",
            target: name,
            before: None,
            after: Some(format!("endpoint {name} from its kept config {config}")),
            outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
        };
        let new_id = self.journal.record_revert(record, id).await;
        result?;
        let _ = self.describe(name).await;
        match new_id {
            Some(new_id) => self.journal.get(new_id).await,
            None => Err(ApiError::Internal("the endpoint was recreated but the journal could not record it".into())),
        }
    }

    pub async fn invoke(&self, name: &str, content_type: &str, body: Bytes) -> Result<(String, Bytes), ApiError> {
        let runtime = &self.aws.clients()?.sagemaker_runtime;
        let out = runtime
            .invoke_endpoint()
            .endpoint_name(name)
            .content_type(content_type)
            .accept("application/json")
            .body(aws_sdk_sagemakerruntime::primitives::Blob::new(body.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker Runtime InvokeEndpoint", e))?;
        let content_type = out.content_type().unwrap_or("application/json").to_string();
        let body = out.body().map(|b| Bytes::copy_from_slice(b.as_ref())).unwrap_or_default();
        Ok((content_type, body))
    }

    /// The endpoint's CloudWatch metrics (namespace AWS/SageMaker, dimensions
    /// EndpointName and VariantName) over the window.
    pub async fn metrics(&self, name: &str, window: MetricWindow) -> Result<Vec<MetricSeries>, ApiError> {
        let cloudwatch = &self.aws.clients()?.cloudwatch;
        let variant = self
            .describe(name)
            .await
            .ok()
            .and_then(|d| d.variants.first().map(|v| v.name.clone()))
            .unwrap_or_else(|| VARIANT.to_string());
        use crate::cloudwatch::{statistics, wanted};
        statistics(
            cloudwatch,
            "AWS/SageMaker",
            &[("EndpointName", name), ("VariantName", &variant)],
            &[
                wanted("Invocations", Statistic::Sum, "Count"),
                wanted("InvocationsPerInstance", Statistic::Sum, "Count"),
                wanted("ModelLatency", Statistic::Average, "Microseconds"),
                wanted("OverheadLatency", Statistic::Average, "Microseconds"),
                wanted("Invocation4XXErrors", Statistic::Sum, "Count"),
                wanted("Invocation5XXErrors", Statistic::Sum, "Count"),
            ],
            window,
        )
        .await
    }
}
