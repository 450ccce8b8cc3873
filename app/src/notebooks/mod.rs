//! Notebook instances: the types the page shows, the rules for what may be
//! started or stopped, the price table, and the server functions.

pub mod create;
pub mod lifecycle;
mod page;
pub mod pricing;

pub use page::{NotebookDetailPage, NotebooksPage};

use crate::names::NotebookName;
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of the notebook list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotebookSummary {
    pub name: String,
    /// SageMaker's status word: Pending, InService, Stopping, Stopped, Failed, Deleting, Updating.
    pub status: String,
    pub instance_type: String,
    /// On-demand price estimate from [`pricing::hourly_usd`]; `None` for types not in the table.
    pub hourly_usd: Option<f64>,
    /// RFC 3339, UTC.
    pub created_at: Option<String>,
    pub last_modified_at: Option<String>,
    pub url: Option<String>,
}

/// Everything DescribeNotebookInstance tells about one notebook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotebookDetail {
    pub summary: NotebookSummary,
    pub arn: Option<String>,
    pub role_arn: Option<String>,
    pub volume_size_gb: Option<i32>,
    pub subnet_id: Option<String>,
    pub security_groups: Vec<String>,
    pub direct_internet_access: Option<String>,
    pub root_access: Option<String>,
    pub lifecycle_config: Option<String>,
    pub platform_identifier: Option<String>,
    pub default_code_repository: Option<String>,
    pub kms_key_id: Option<String>,
    pub failure_reason: Option<String>,
}

/// What a start or stop did: the status before, and the notebook as AWS
/// describes it right after the call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotebookChange {
    pub name: String,
    pub action: String,
    pub status_before: String,
    pub after: NotebookDetail,
}

/// The server's side of the notebook calls (AWS adapter in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait NotebookService: Send + Sync {
    async fn list(&self) -> Result<Vec<NotebookSummary>, ApiError>;
    async fn describe(&self, name: &NotebookName) -> Result<NotebookDetail, ApiError>;
    async fn start(&self, name: &NotebookName) -> Result<NotebookChange, ApiError>;
    async fn stop(&self, name: &NotebookName) -> Result<NotebookChange, ApiError>;
    async fn create(&self, spec: create::NotebookSpec) -> Result<NotebookDetail, ApiError>;
    /// Deletes a stopped (or failed) notebook and its volume.
    async fn delete(&self, name: &NotebookName) -> Result<(), ApiError>;
    /// A presigned JupyterLab URL (valid 5 minutes to open, as SageMaker makes it).
    async fn open(&self, name: &NotebookName) -> Result<String, ApiError>;
    /// Roles SageMaker may assume, for the create form.
    async fn roles(&self) -> Result<Vec<String>, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Notebooks = std::sync::Arc<dyn NotebookService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/list")]
pub async fn list_notebooks() -> Result<Vec<NotebookSummary>, ApiError> {
    use crate::error::service;
    service::<Notebooks>()?.list().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/describe")]
pub async fn describe_notebook(name: NotebookName) -> Result<NotebookDetail, ApiError> {
    use crate::error::service;
    service::<Notebooks>()?.describe(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/start")]
pub async fn start_notebook(name: NotebookName) -> Result<NotebookChange, ApiError> {
    use crate::error::service;
    service::<Notebooks>()?.start(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/stop")]
pub async fn stop_notebook(name: NotebookName) -> Result<NotebookChange, ApiError> {
    use crate::error::service;
    service::<Notebooks>()?.stop(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/create", input = leptos::server_fn::codec::Json)]
pub async fn create_notebook(spec: create::NotebookSpec) -> Result<NotebookDetail, ApiError> {
    use crate::error::service;
    spec.validate()?;
    service::<Notebooks>()?.create(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/delete")]
pub async fn delete_notebook(name: NotebookName) -> Result<(), ApiError> {
    use crate::error::service;
    service::<Notebooks>()?.delete(&name).await
}

/// JupyterLab for an InService notebook, through a presigned URL.
#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/open")]
pub async fn open_notebook(name: NotebookName) -> Result<String, ApiError> {
    use crate::error::service;
    service::<Notebooks>()?.open(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "notebooks/roles")]
pub async fn notebook_roles() -> Result<Vec<String>, ApiError> {
    use crate::error::service;
    service::<Notebooks>()?.roles().await
}
