//! Reading one SageMaker endpoint: DescribeEndpoint and its configuration,
//! as the endpoint's page and the cached list both show it.

use crate::aws::{created_key, from_sdk, rfc3339};
use app::endpoints::{Backend, EndpointDetail, EndpointSummary, VariantInfo};
use app::ApiError;
use aws_sdk_sagemaker::types::ProductionVariant;

/// What one endpoint looks like to the list, as DescribeEndpoint(+Config)
/// read it.
pub struct Described {
    pub detail: EndpointDetail,
    pub created_key: String,
    pub last_modified: Option<String>,
}

/// One endpoint as DescribeEndpoint and DescribeEndpointConfig tell it.
pub async fn describe_endpoint(client: &aws_sdk_sagemaker::Client, name: &str) -> Result<Described, ApiError> {
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
    let detail = EndpointDetail {
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
    };
    Ok(Described {
        created_key: e.creation_time().map(created_key).unwrap_or_default(),
        last_modified: e.last_modified_time().map(created_key),
        detail,
    })
}
