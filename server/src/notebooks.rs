//! Notebook instances on SageMaker: the AWS adapter behind the Notebooks page.

use crate::aws::{from_sdk, Aws};
use crate::journal::{Change, Journal};
use app::notebooks::lifecycle::{can_start, can_stop, NotebookStatus};
use app::notebooks::{pricing, NotebookChange, NotebookDetail, NotebookService, NotebookSummary};
use app::ApiError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{NotebookInstanceSortKey, NotebookInstanceSortOrder};
use aws_smithy_types::date_time::Format;
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

    async fn transition(&self, name: &str, transition: Transition) -> Result<NotebookChange, ApiError> {
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

fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
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

    async fn describe(&self, name: &str) -> Result<NotebookDetail, ApiError> {
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

    async fn start(&self, name: &str) -> Result<NotebookChange, ApiError> {
        self.transition(name, Transition::Start).await
    }

    async fn stop(&self, name: &str) -> Result<NotebookChange, ApiError> {
        self.transition(name, Transition::Stop).await
    }
}
