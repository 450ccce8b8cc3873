//! Notebook instances on SageMaker: the AWS adapter behind the Notebooks page.

use crate::aws::rfc3339;
use crate::aws::{from_sdk, Aws};
use crate::journal::{Change, Journal};
use app::names::NotebookName;
use app::notebooks::create::{idle_stop_config_name, idle_stop_on_start, NotebookSpec};
use app::notebooks::lifecycle::{can_delete, can_open, can_start, can_stop, NotebookStatus};
use app::notebooks::{pricing, NotebookChange, NotebookDetail, NotebookService, NotebookSummary};
use app::ApiError;
use aws_sdk_sagemaker::types::{InstanceType, NotebookInstanceLifecycleHook, NotebookInstanceSortKey, NotebookInstanceSortOrder};
use base64::Engine as _;
use std::sync::Arc;

pub struct AwsNotebooks {
    aws: Arc<Aws>,
    journal: Journal,
}

/// Start and stop share everything but the call and its precondition.
#[derive(Clone, Copy)]
enum Transition {
    Start,
    Stop,
}

impl Transition {
    fn action(self) -> &'static str {
        match self {
            Transition::Start => "notebook.start",
            Transition::Stop => "notebook.stop",
        }
    }
    fn verb(self) -> &'static str {
        match self {
            Transition::Start => "Started",
            Transition::Stop => "Stopped",
        }
    }
    fn allowed(self, status: &NotebookStatus) -> Result<(), String> {
        match self {
            Transition::Start => can_start(status),
            Transition::Stop => can_stop(status),
        }
    }
}

impl AwsNotebooks {
    pub fn new(aws: Arc<Aws>, journal: Journal) -> Self {
        Self { aws, journal }
    }

    fn client(&self) -> Result<&aws_sdk_sagemaker::Client, ApiError> {
        Ok(&self.aws.clients()?.sagemaker)
    }

    async fn transition(&self, name: &NotebookName, transition: Transition) -> Result<NotebookChange, ApiError> {
        let client = self.client()?;
        let before = self.describe(name).await?;
        let status_before = before.summary.status.clone();
        let result = match transition.allowed(&NotebookStatus::parse(&status_before)) {
            Err(why) => Err(ApiError::Conflict(format!(
                "Cannot {} notebook {name}: {why}.",
                if matches!(transition, Transition::Start) { "start" } else { "stop" }
            ))),
            Ok(()) => match transition {
                Transition::Start => client
                    .start_notebook_instance()
                    .notebook_instance_name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk("SageMaker StartNotebookInstance", e)),
                Transition::Stop => client
                    .stop_notebook_instance()
                    .notebook_instance_name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk("SageMaker StopNotebookInstance", e)),
            },
        };
        let after = match &result {
            Ok(()) => self.describe(name).await,
            Err(e) => Err(e.clone()),
        };
        self.journal
            .record(Change {
                backend: "aws",
                action: transition.action(),
                target: name,
                before: Some(status_before.clone()),
                after: after.as_ref().ok().map(|d| d.summary.status.clone()),
                outcome: after.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        let after = after?;
        Ok(NotebookChange { name: name.to_string(), action: transition.verb().to_string(), status_before, after })
    }
}

impl AwsNotebooks {
    /// Sagedeck's idle auto-stop configuration for `minutes`, made the first
    /// time a notebook asks for it (one per period, shared).
    async fn ensure_idle_stop_config(&self, minutes: u32) -> Result<String, ApiError> {
        let client = self.client()?;
        let name = idle_stop_config_name(minutes);
        let exists = client.describe_notebook_instance_lifecycle_config().notebook_instance_lifecycle_config_name(&name).send().await;
        match exists {
            Ok(_) => return Ok(name),
            Err(e) => match from_sdk("SageMaker DescribeNotebookInstanceLifecycleConfig", e) {
                // SageMaker says "Unable to describe" (a ValidationException) when it is not there.
                ApiError::NotFound(_) | ApiError::Invalid(_) => {}
                other => return Err(other),
            },
        }
        let script = base64::engine::general_purpose::STANDARD.encode(idle_stop_on_start(minutes));
        client
            .create_notebook_instance_lifecycle_config()
            .notebook_instance_lifecycle_config_name(&name)
            .on_start(NotebookInstanceLifecycleHook::builder().content(script).build())
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker CreateNotebookInstanceLifecycleConfig", e))?;
        Ok(name)
    }

    async fn create_inner(&self, spec: &NotebookSpec) -> Result<NotebookDetail, ApiError> {
        let client = self.client()?;
        let lifecycle = match (spec.lifecycle_config.is_empty(), spec.idle_stop_minutes) {
            (false, _) => Some(spec.lifecycle_config.clone()),
            (true, Some(minutes)) => Some(self.ensure_idle_stop_config(minutes).await?),
            (true, None) => None,
        };
        client
            .create_notebook_instance()
            .notebook_instance_name(&spec.name)
            .instance_type(InstanceType::from(spec.instance_type.as_str()))
            .role_arn(&spec.role_arn)
            .volume_size_in_gb(spec.volume_size_gb as i32)
            .set_lifecycle_config_name(lifecycle)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker CreateNotebookInstance", e))?;
        self.describe(&NotebookName::parse(&spec.name)?).await
    }
}

#[async_trait::async_trait]
impl NotebookService for AwsNotebooks {
    async fn list(&self) -> Result<Vec<NotebookSummary>, ApiError> {
        let client = self.client()?;
        let mut items = client
            .list_notebook_instances()
            .sort_by(NotebookInstanceSortKey::CreationTime)
            .sort_order(NotebookInstanceSortOrder::Descending)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = items.next().await {
            let nb = item.map_err(|e| from_sdk("SageMaker ListNotebookInstances", e))?;
            let instance_type = nb.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default();
            out.push(NotebookSummary {
                name: nb.notebook_instance_name().unwrap_or_default().to_string(),
                status: nb.notebook_instance_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                hourly_usd: pricing::hourly_usd(&instance_type),
                instance_type,
                created_at: rfc3339(nb.creation_time()),
                last_modified_at: rfc3339(nb.last_modified_time()),
                url: nb.url().map(str::to_string),
            });
        }
        Ok(out)
    }

    async fn describe(&self, name: &NotebookName) -> Result<NotebookDetail, ApiError> {
        let d = self
            .client()?
            .describe_notebook_instance()
            .notebook_instance_name(name)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeNotebookInstance", e))?;
        let instance_type = d.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default();
        Ok(NotebookDetail {
            summary: NotebookSummary {
                name: d.notebook_instance_name().unwrap_or(name).to_string(),
                status: d.notebook_instance_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                hourly_usd: pricing::hourly_usd(&instance_type),
                instance_type,
                created_at: rfc3339(d.creation_time()),
                last_modified_at: rfc3339(d.last_modified_time()),
                url: d.url().map(str::to_string),
            },
            arn: d.notebook_instance_arn().map(str::to_string),
            role_arn: d.role_arn().map(str::to_string),
            volume_size_gb: d.volume_size_in_gb(),
            subnet_id: d.subnet_id().map(str::to_string),
            security_groups: d.security_groups().to_vec(),
            direct_internet_access: d.direct_internet_access().map(|v| v.as_str().to_string()),
            root_access: d.root_access().map(|v| v.as_str().to_string()),
            lifecycle_config: d.notebook_instance_lifecycle_config_name().map(str::to_string),
            platform_identifier: d.platform_identifier().map(str::to_string),
            default_code_repository: d.default_code_repository().map(str::to_string),
            kms_key_id: d.kms_key_id().map(str::to_string),
            failure_reason: d.failure_reason().map(str::to_string),
        })
    }

    async fn start(&self, name: &NotebookName) -> Result<NotebookChange, ApiError> {
        self.transition(name, Transition::Start).await
    }

    async fn stop(&self, name: &NotebookName) -> Result<NotebookChange, ApiError> {
        self.transition(name, Transition::Stop).await
    }

    async fn create(&self, spec: NotebookSpec) -> Result<NotebookDetail, ApiError> {
        let result = self.create_inner(&spec).await;
        let after = format!(
            "{} · {} GB · role {} · lifecycle {}",
            spec.instance_type,
            spec.volume_size_gb,
            spec.role_arn,
            spec.lifecycle().unwrap_or_else(|| "none".into())
        );
        self.journal
            .record(Change {
                backend: "aws",
                action: "notebook.create",
                target: &spec.name,
                before: None,
                after: Some(after),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result
    }

    async fn delete(&self, name: &NotebookName) -> Result<(), ApiError> {
        let before = self.describe(name).await?;
        let s = &before.summary;
        let result = match can_delete(&NotebookStatus::parse(&s.status)) {
            Err(why) => Err(ApiError::Conflict(format!("Cannot delete notebook {name}: {why}."))),
            Ok(()) => self
                .client()?
                .delete_notebook_instance()
                .notebook_instance_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| from_sdk("SageMaker DeleteNotebookInstance", e)),
        };
        self.journal
            .record(Change {
                backend: "aws",
                action: "notebook.delete",
                target: name,
                before: Some(format!(
                    "{} · {} · {} GB · role {}",
                    s.status,
                    s.instance_type,
                    before.volume_size_gb.unwrap_or_default(),
                    before.role_arn.as_deref().unwrap_or("—")
                )),
                after: Some("deleted with its volume".into()),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result
    }

    async fn open(&self, name: &NotebookName) -> Result<String, ApiError> {
        let detail = self.describe(name).await?;
        can_open(&NotebookStatus::parse(&detail.summary.status)).map_err(|why| ApiError::Conflict(format!("Cannot open notebook {name}: {why}.")))?;
        let answer = self
            .client()?
            .create_presigned_notebook_instance_url()
            .notebook_instance_name(name)
            .session_expiration_duration_in_seconds(12 * 3600)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker CreatePresignedNotebookInstanceUrl", e))?;
        let url = answer.authorized_url().unwrap_or_default();
        if !url.starts_with("https://") {
            return Err(ApiError::Upstream(format!("SageMaker answered CreatePresignedNotebookInstanceUrl without an https URL ({url:?}).")));
        }
        // JupyterLab rather than the classic tree.
        Ok(with_lab_view(url))
    }

    async fn roles(&self) -> Result<Vec<String>, ApiError> {
        crate::training::sagemaker::roles_sagemaker_may_assume(&self.aws.clients()?.iam).await
    }
}

/// A presigned notebook URL opening JupyterLab: SageMaker takes `view=lab`
/// beside the token (`&view=lab`), as its console's "Open JupyterLab" does.
pub fn with_lab_view(url: &str) -> String {
    if url.contains("view=lab") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&view=lab")
    } else {
        format!("{url}?view=lab")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn presigned_urls_open_jupyterlab() {
        let url = "https://nb.notebook.us-east-1.sagemaker.aws?authToken=abc";
        assert_eq!(super::with_lab_view(url), "https://nb.notebook.us-east-1.sagemaker.aws?authToken=abc&view=lab");
        assert_eq!(super::with_lab_view(&super::with_lab_view(url)), super::with_lab_view(url));
        assert_eq!(super::with_lab_view("https://x"), "https://x?view=lab");
    }
}
