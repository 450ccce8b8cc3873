//! SageMaker endpoints: list, describe, deploy from a training job's model
//! artifact, delete, invoke through sagemaker-runtime, and CloudWatch metrics.

use crate::aws::{from_sdk, Aws};
use crate::journal::{Change, Journal};
use app::endpoints::{
    Backend, DeployableJob, EndpointDetail, EndpointSummary, MetricSeries, MetricWindow, SageMakerDeploySpec, VariantInfo,
};
use app::ApiError;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{
    ContainerDefinition, EndpointSortKey, ProductionVariant, ProductionVariantInstanceType, SortBy, TrainingJobStatus,
};
use aws_smithy_types::date_time::Format;
use axum::body::Bytes;
use std::sync::Arc;

/// The variant name SageMaker's SDKs use when there is one.
pub const VARIANT: &str = "AllTraffic";

pub struct SageMakerEndpoints {
    aws: Arc<Aws>,
    journal: Journal,
}

fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

/// The AWS Deep Learning Containers PyTorch inference image of a region,
/// the image the seeds' PyTorchModel deploys with.
pub fn pytorch_inference_image(region: &str) -> String {
    format!("763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.5-cpu-py311")
}

impl SageMakerEndpoints {
    pub fn new(aws: Arc<Aws>, journal: Journal) -> Self {
        Self { aws, journal }
    }

    fn sm(&self) -> Result<&aws_sdk_sagemaker::Client, ApiError> {
        Ok(&self.aws.clients()?.sagemaker)
    }

    pub async fn list(&self) -> Result<Vec<EndpointSummary>, ApiError> {
        let client = self.sm()?;
        let mut items = client
            .list_endpoints()
            .sort_by(EndpointSortKey::CreationTime)
            .sort_order(aws_sdk_sagemaker::types::OrderKey::Descending)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = items.next().await {
            let e = item.map_err(|e| from_sdk("SageMaker ListEndpoints", e))?;
            let name = e.endpoint_name().unwrap_or_default().to_string();
            // The list has no instance figures; the first endpoints are
            // described for them, the rest show what the list has.
            let summary = if out.len() < 25 {
                self.describe(&name).await.map(|d| d.summary).ok()
            } else {
                None
            };
            out.push(summary.unwrap_or_else(|| EndpointSummary {
                name: name.clone(),
                backend: Backend::SageMaker,
                status: e.endpoint_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                instances: 0,
                instance_type: String::new(),
                model: String::new(),
                created_at: rfc3339(e.creation_time()),
            }));
        }
        Ok(out)
    }

    pub async fn describe(&self, name: &str) -> Result<EndpointDetail, ApiError> {
        let client = self.sm()?;
        let e = client
            .describe_endpoint()
            .endpoint_name(name)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeEndpoint", e))?;
        let config_name = e.endpoint_config_name().map(str::to_string);
        let config = match &config_name {
            Some(c) => client.describe_endpoint_config().endpoint_config_name(c).send().await.ok(),
            None => None,
        };
        let configured: Vec<&ProductionVariant> = config.as_ref().map(|c| c.production_variants().iter().collect()).unwrap_or_default();
        let mut variants: Vec<VariantInfo> = e
            .production_variants()
            .iter()
            .map(|v| {
                let name = v.variant_name().unwrap_or_default().to_string();
                let conf = configured.iter().find(|c| c.variant_name() == Some(name.as_str()));
                VariantInfo {
                    model: conf.and_then(|c| c.model_name()).unwrap_or_default().to_string(),
                    instance_type: conf.and_then(|c| c.instance_type()).map(|t| t.as_str().to_string()).unwrap_or_default(),
                    current_instances: v.current_instance_count(),
                    desired_instances: v.desired_instance_count(),
                    weight: v.current_weight(),
                    name,
                }
            })
            .collect();
        // While an endpoint is Creating the description has no variants yet:
        // show the configured ones.
        if variants.is_empty() {
            variants = configured
                .iter()
                .map(|c| VariantInfo {
                    name: c.variant_name().unwrap_or_default().to_string(),
                    model: c.model_name().unwrap_or_default().to_string(),
                    instance_type: c.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    current_instances: None,
                    desired_instances: c.initial_instance_count(),
                    weight: c.initial_variant_weight(),
                })
                .collect();
        }
        let instances: i32 = variants.iter().map(|v| v.current_instances.or(v.desired_instances).unwrap_or(0)).sum();
        let summary = EndpointSummary {
            name: e.endpoint_name().unwrap_or(name).to_string(),
            backend: Backend::SageMaker,
            status: e.endpoint_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            instances: instances.max(0) as u32,
            instance_type: variants.iter().map(|v| v.instance_type.clone()).collect::<Vec<_>>().join(", "),
            model: variants.iter().map(|v| v.model.clone()).collect::<Vec<_>>().join(", "),
            created_at: rfc3339(e.creation_time()),
        };
        Ok(EndpointDetail {
            invoke_path: Backend::SageMaker.invoke_path(&summary.name),
            summary,
            arn: e.endpoint_arn().map(str::to_string),
            config_name,
            variants,
            failure_reason: e.failure_reason().map(str::to_string),
            classes: Vec::new(),
            batching: None,
            artifact_dir: None,
            job_id: None,
            input_size: None,
            device: None,
            queued: None,
        })
    }

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

    /// CreateModel → CreateEndpointConfig → CreateEndpoint. A step that
    /// fails deletes what the earlier steps made, and the error says so.
    pub async fn deploy(&self, spec: &SageMakerDeploySpec) -> Result<EndpointDetail, ApiError> {
        let clients = self.aws.clients()?;
        let client = &clients.sagemaker;
        let job = client
            .describe_training_job()
            .training_job_name(&spec.training_job)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeTrainingJob", e))?;
        if job.training_job_status() != Some(&TrainingJobStatus::Completed) {
            return Err(ApiError::Conflict(format!(
                "training job {} is {}, not Completed: only a completed job has a model to deploy",
                spec.training_job,
                job.training_job_status().map(|s| s.as_str()).unwrap_or("in an unknown state")
            )));
        }
        let artifact = job
            .model_artifacts()
            .and_then(|a| a.s3_model_artifacts())
            .ok_or_else(|| ApiError::Conflict(format!("training job {} left no model artifact", spec.training_job)))?
            .to_string();
        let role = if spec.role_arn.is_empty() { job.role_arn().unwrap_or_default().to_string() } else { spec.role_arn.clone() };
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        let image = if spec.image.trim().is_empty() { pytorch_inference_image(&region) } else { spec.image.trim().to_string() };
        let model_name = format!("{}-model", spec.name);
        let config_name = format!("{}-config", spec.name);

        let mut made: Vec<&str> = Vec::new();
        let result: Result<(), ApiError> = async {
            client
                .create_model()
                .model_name(&model_name)
                .execution_role_arn(&role)
                .primary_container(ContainerDefinition::builder().image(&image).model_data_url(&artifact).build())
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
                Err(if undone.is_empty() {
                    error
                } else {
                    ApiError::Upstream(format!("{} Sagedeck deleted what it had made: {}.", error.message(), undone.join(" and ")))
                })
            }
        };
        self.journal
            .record(Change {
                backend: "aws",
                action: "endpoint.sagemaker.create",
                target: &spec.name,
                before: None,
                after: result.as_ref().ok().map(|_| {
                    format!(
                        "model {model_name} ({image}, {artifact}) → config {config_name} ({} × {}) → endpoint {}",
                        spec.instance_count, spec.instance_type, spec.name
                    )
                }),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result?;
        self.describe(&spec.name).await
    }

    pub async fn delete(&self, name: &str, with_config: bool) -> Result<(), ApiError> {
        let client = self.sm()?;
        let before = self.describe(name).await?;
        let mut deleted = vec![format!("endpoint {name}")];
        let result: Result<(), ApiError> = async {
            client.delete_endpoint().endpoint_name(name).send().await.map_err(|e| from_sdk("SageMaker DeleteEndpoint", e))?;
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
                before: Some(format!("{} · {} × {}", before.summary.status, before.summary.instances, before.summary.instance_type)),
                after: Some(format!("deleted {}", deleted.join(", "))),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result
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
        // Whole periods, the current one included: CloudWatch aggregates per
        // period from the start time, and an end of "now" would leave out the
        // datapoints of this very second.
        let period = window.period_seconds();
        let end = (time::OffsetDateTime::now_utc().unix_timestamp() / period + 1) * period;
        let start = end - window.seconds();
        let mut out = Vec::new();
        for (metric, statistic, unit) in [
            ("Invocations", Statistic::Sum, "Count"),
            ("InvocationsPerInstance", Statistic::Sum, "Count"),
            ("ModelLatency", Statistic::Average, "Microseconds"),
            ("OverheadLatency", Statistic::Average, "Microseconds"),
            ("Invocation4XXErrors", Statistic::Sum, "Count"),
            ("Invocation5XXErrors", Statistic::Sum, "Count"),
        ] {
            let answer = cloudwatch
                .get_metric_statistics()
                .namespace("AWS/SageMaker")
                .metric_name(metric)
                .dimensions(Dimension::builder().name("EndpointName").value(name).build())
                .dimensions(Dimension::builder().name("VariantName").value(&variant).build())
                .start_time(aws_smithy_types::DateTime::from_secs(start))
                .end_time(aws_smithy_types::DateTime::from_secs(end))
                .period(window.period_seconds() as i32)
                .statistics(statistic.clone())
                .send()
                .await
                .map_err(|e| from_sdk("CloudWatch GetMetricStatistics", e))?;
            let mut points: Vec<(i64, f64)> = answer
                .datapoints()
                .iter()
                .filter_map(|d| {
                    let t = d.timestamp()?.secs();
                    let v = if statistic == Statistic::Sum { d.sum() } else { d.average() }?;
                    Some((t, v))
                })
                .collect();
            points.sort_by_key(|p| p.0);
            out.push(MetricSeries { name: metric.into(), statistic: statistic.as_str().into(), unit: unit.into(), points });
        }
        Ok(out)
    }
}
