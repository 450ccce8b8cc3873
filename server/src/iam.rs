//! The IAM review of the live account: GetAccountAuthorizationDetails
//! (paginated, roles and customer-managed policies; documents arrive
//! URL-encoded), the default versions of the AWS-managed policies the roles
//! attach, and GetRole for each role's RoleLastUsed. The judging itself is
//! `app::iam::analyze`, the same code the browser runs on a file.

use crate::aws::{from_sdk, Aws};
use crate::journal::{Change, Journal};
use app::iam::analyze::{PolicyInput, PolicyKind, RoleInput};
use app::iam::fix::{plan_lambda_fix, FixPlan};
use app::iam::{review, AccountReview, FixOutcome, IamService};
use app::journal::ReverterService;
use app::overview::ChangeRecord;
use app::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use aws_sdk_iam::types::EntityType;
use std::collections::HashMap;
use std::sync::Arc;

pub struct AwsIam {
    aws: Arc<Aws>,
    journal: Journal,
}

/// A role's permissions as a fix changes them: what the journal keeps before
/// and after, and what a rollback puts back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RolePermissions {
    pub attached: Vec<String>,
    pub inline: BTreeMap<String, String>,
}

impl RolePermissions {
    fn of(role: &RoleInput) -> Self {
        RolePermissions {
            attached: role.policies.iter().filter(|p| p.kind != PolicyKind::Inline).filter_map(|p| p.arn.clone()).collect(),
            inline: role.policies.iter().filter(|p| p.kind == PolicyKind::Inline).map(|p| (p.name.clone(), p.document.clone())).collect(),
        }
    }
}

fn decode(doc: &str) -> String {
    percent_encoding::percent_decode_str(doc).decode_utf8_lossy().into_owned()
}

fn seconds(t: &aws_sdk_iam::primitives::DateTime) -> i64 {
    t.secs()
}

impl AwsIam {
    pub fn new(aws: Arc<Aws>, journal: Journal) -> Self {
        Self { aws, journal }
    }

    async fn role(&self, name: &str) -> Result<RoleInput, ApiError> {
        let (roles, _) = self.roles().await?;
        roles.into_iter().find(|r| r.name == name).ok_or_else(|| ApiError::NotFound(format!("there is no role named {name:?}")))
    }

    /// The Lambda functions that run as `role_arn`, with their ENDPOINT_NAME.
    async fn functions_using(&self, role_arn: &str) -> Result<Vec<(String, String)>, ApiError> {
        let lambda = &self.aws.clients()?.lambda;
        let mut pages = lambda.list_functions().into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(f) = pages.next().await {
            let f = f.map_err(|e| from_sdk("Lambda ListFunctions", e))?;
            if f.role() == Some(role_arn) {
                if let Some(endpoint) = f.environment().and_then(|e| e.variables()).and_then(|v| v.get("ENDPOINT_NAME")) {
                    out.push((f.function_name().unwrap_or_default().to_string(), endpoint.clone()));
                }
            }
        }
        Ok(out)
    }

    /// The S3 inputs and outputs of the training and tuning jobs that ran as
    /// `role_arn` (the 100 most recent of each are looked at).
    async fn training_locations(&self, role_arn: &str) -> Result<(Vec<String>, Vec<String>), ApiError> {
        let sm = &self.aws.clients()?.sagemaker;
        let mut names = Vec::new();
        let mut pages = sm.list_training_jobs().max_results(100).into_paginator().items().send();
        while let Some(j) = pages.next().await {
            names.push(j.map_err(|e| from_sdk("SageMaker ListTrainingJobs", e))?.training_job_name().unwrap_or_default().to_string());
            if names.len() >= 100 {
                break;
            }
        }
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        for name in names {
            let j = sm.describe_training_job().training_job_name(&name).send().await.map_err(|e| from_sdk("SageMaker DescribeTrainingJob", e))?;
            if j.role_arn() != Some(role_arn) {
                continue;
            }
            inputs.extend(j.input_data_config().iter().filter_map(|c| c.data_source()?.s3_data_source()).filter_map(|s| s.s3_uri().map(str::to_string)));
            outputs.extend(j.output_data_config().and_then(|o| o.s3_output_path()).map(str::to_string));
        }
        // Tuning jobs run their trials as the role too, writing under the
        // tuning job's own output path (its trials may not be listed yet).
        let mut tuning = Vec::new();
        let mut pages = sm.list_hyper_parameter_tuning_jobs().max_results(100).into_paginator().items().send();
        while let Some(t) = pages.next().await {
            tuning.push(t.map_err(|e| from_sdk("SageMaker ListHyperParameterTuningJobs", e))?.hyper_parameter_tuning_job_name().unwrap_or_default().to_string());
            if tuning.len() >= 100 {
                break;
            }
        }
        for name in tuning {
            let t = sm
                .describe_hyper_parameter_tuning_job()
                .hyper_parameter_tuning_job_name(&name)
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker DescribeHyperParameterTuningJob", e))?;
            for d in t.training_job_definition().into_iter().chain(t.training_job_definitions()) {
                if d.role_arn() != Some(role_arn) {
                    continue;
                }
                inputs.extend(d.input_data_config().iter().filter_map(|c| c.data_source()?.s3_data_source()).filter_map(|s| s.s3_uri().map(str::to_string)));
                outputs.extend(d.output_data_config().and_then(|o| o.s3_output_path()).map(str::to_string));
            }
        }
        for v in [&mut inputs, &mut outputs] {
            v.sort();
            v.dedup();
        }
        Ok((inputs, outputs))
    }

    async fn plan(&self, role_name: &str) -> Result<(FixPlan, RoleInput), ApiError> {
        let role = self.role(role_name).await?;
        if role.trust.as_deref().is_some_and(|t| t.contains("sagemaker.amazonaws.com")) {
            let (inputs, outputs) = self.training_locations(&role.arn).await?;
            if inputs.is_empty() && outputs.is_empty() {
                return Err(ApiError::Conflict(format!(
                    "no training job ran as {role_name}: Sagedeck builds the fix from the S3 locations of the jobs that use the role"
                )));
            }
            let region = self.aws.clients()?.config.region().map(|r| r.to_string()).unwrap_or_default();
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            return Ok((app::iam::fix::plan_sagemaker_fix(&role, &inputs, &outputs, &region, now), role));
        }
        let functions = self.functions_using(&role.arn).await?;
        let Some((function, endpoint)) = functions.first().cloned() else {
            return Err(ApiError::Conflict(format!(
                "no Lambda function with an ENDPOINT_NAME runs as {role_name}: Sagedeck builds the fix from the deployment that uses the role"
            )));
        };
        let clients = self.aws.clients()?;
        let described = clients
            .sagemaker
            .describe_endpoint()
            .endpoint_name(&endpoint)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeEndpoint", e))?;
        let endpoint_arn = described.endpoint_arn().unwrap_or_default().to_string();
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_default();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Ok((plan_lambda_fix(&role, &endpoint_arn, &region, &function, now), role))
    }

    /// Makes the role's permissions `target` from `current`, step by step;
    /// on a failure the steps already taken are undone. Returns the steps.
    async fn set_permissions(&self, role: &str, current: &RolePermissions, target: &RolePermissions) -> Result<Vec<String>, ApiError> {
        let iam = &self.aws.clients()?.iam;
        let mut done: Vec<String> = Vec::new();
        let result: Result<(), ApiError> = async {
            for (name, doc) in &target.inline {
                if current.inline.get(name) != Some(doc) {
                    iam.put_role_policy().role_name(role).policy_name(name).policy_document(doc).send().await.map_err(|e| from_sdk("IAM PutRolePolicy", e))?;
                    done.push(format!("put inline policy {name}"));
                }
            }
            for arn in target.attached.iter().filter(|a| !current.attached.contains(a)) {
                iam.attach_role_policy().role_name(role).policy_arn(arn).send().await.map_err(|e| from_sdk("IAM AttachRolePolicy", e))?;
                done.push(format!("attached {arn}"));
            }
            for arn in current.attached.iter().filter(|a| !target.attached.contains(a)) {
                iam.detach_role_policy().role_name(role).policy_arn(arn).send().await.map_err(|e| from_sdk("IAM DetachRolePolicy", e))?;
                done.push(format!("detached {arn}"));
            }
            for name in current.inline.keys().filter(|n| !target.inline.contains_key(*n)) {
                iam.delete_role_policy().role_name(role).policy_name(name).send().await.map_err(|e| from_sdk("IAM DeleteRolePolicy", e))?;
                done.push(format!("deleted inline policy {name}"));
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(done),
            Err(e) if done.is_empty() => Err(e),
            Err(e) => {
                // Back to where it was: the same walk from whatever is there now.
                let now = self.role(role).await.map(|r| RolePermissions::of(&r)).unwrap_or_default();
                let undone = Box::pin(self.set_permissions(role, &now, current)).await;
                let words = match undone {
                    Ok(_) => format!("The steps taken ({}) were undone.", done.join(", ")),
                    Err(u) => format!("Undoing the steps taken ({}) failed too: {}", done.join(", "), u.message()),
                };
                Err(ApiError::Upstream(format!("{} {words}", e.message())))
            }
        }
    }

    /// The roles as the analyzer reads them.
    pub async fn roles(&self) -> Result<(Vec<RoleInput>, String), ApiError> {
        let clients = self.aws.clients()?;
        let iam = &clients.iam;
        let mut pages = iam
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .filter(EntityType::LocalManagedPolicy)
            .into_paginator()
            .send();
        let mut details = Vec::new();
        let mut managed: HashMap<String, String> = HashMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("IAM GetAccountAuthorizationDetails", e))?;
            for p in page.policies() {
                let default = p.policy_version_list().iter().find(|v| v.is_default_version());
                if let (Some(arn), Some(doc)) = (p.arn(), default.and_then(|v| v.document())) {
                    managed.insert(arn.to_string(), decode(doc));
                }
            }
            details.extend(page.role_detail_list().iter().cloned());
        }
        // AWS-managed policies are not in the pages above (all of AWS's
        // would be): the default version of each one a role attaches.
        let mut wanted: Vec<String> = details
            .iter()
            .flat_map(|r| r.attached_managed_policies().iter().filter_map(|a| a.policy_arn()).map(str::to_string))
            .chain(details.iter().filter_map(|r| r.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_string)))
            .filter(|arn| !managed.contains_key(arn))
            .collect();
        wanted.sort();
        wanted.dedup();
        for arn in wanted {
            let policy = iam.get_policy().policy_arn(&arn).send().await.map_err(|e| from_sdk("IAM GetPolicy", e))?;
            let Some(version) = policy.policy().and_then(|p| p.default_version_id()) else { continue };
            let v = iam.get_policy_version().policy_arn(&arn).version_id(version).send().await.map_err(|e| from_sdk("IAM GetPolicyVersion", e))?;
            if let Some(doc) = v.policy_version().and_then(|v| v.document()) {
                managed.insert(arn, decode(doc));
            }
        }
        let mut roles = Vec::new();
        for r in &details {
            let name = r.role_name().unwrap_or_default().to_string();
            // RoleLastUsed is reliable only from GetRole.
            let last_used = match iam.get_role().role_name(&name).send().await {
                Ok(got) => got.role().and_then(|role| role.role_last_used()).and_then(|u| u.last_used_date()).map(seconds),
                Err(e) => return Err(from_sdk("IAM GetRole", e)),
            };
            let mut policies: Vec<PolicyInput> = r
                .role_policy_list()
                .iter()
                .map(|p| PolicyInput {
                    name: p.policy_name().unwrap_or_default().to_string(),
                    arn: None,
                    kind: PolicyKind::Inline,
                    document: p.policy_document().map(decode).unwrap_or_default(),
                })
                .collect();
            for a in r.attached_managed_policies() {
                let arn = a.policy_arn().unwrap_or_default().to_string();
                policies.push(PolicyInput {
                    name: a.policy_name().unwrap_or_default().to_string(),
                    kind: if arn.starts_with("arn:aws:iam::aws:policy/") { PolicyKind::AwsManaged } else { PolicyKind::CustomerManaged },
                    document: managed.get(&arn).cloned().unwrap_or_default(),
                    arn: Some(arn),
                });
            }
            let boundary = r.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(|arn| PolicyInput {
                name: arn.rsplit('/').next().unwrap_or(arn).to_string(),
                arn: Some(arn.to_string()),
                kind: PolicyKind::Boundary,
                document: managed.get(arn).cloned().unwrap_or_default(),
            });
            roles.push(RoleInput {
                name,
                arn: r.arn().unwrap_or_default().to_string(),
                created: r.create_date().map(seconds),
                last_used,
                trust: r.assume_role_policy_document().map(decode),
                policies,
                boundary,
            });
        }
        let account = details.first().and_then(|r| r.arn()).and_then(|a| a.split(':').nth(4)).unwrap_or("?").to_string();
        Ok((roles, format!("AWS account {account}")))
    }
}

#[async_trait::async_trait]
impl IamService for AwsIam {
    async fn review_account(&self, unused_days: u32) -> Result<AccountReview, ApiError> {
        let (roles, source) = self.roles().await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Ok(review(source, roles, now, unused_days))
    }

    async fn plan_fix(&self, role: &str) -> Result<FixPlan, ApiError> {
        Ok(self.plan(role).await?.0)
    }

    async fn apply_fix(&self, role: &str) -> Result<FixOutcome, ApiError> {
        let (plan, input) = self.plan(role).await?;
        let before = RolePermissions::of(&input);
        let after = RolePermissions { attached: Vec::new(), inline: [plan.put_inline.clone()].into_iter().collect() };
        let result = self.set_permissions(role, &before, &after).await;
        let change_id = self
            .journal
            .record(Change {
                backend: "aws",
                action: "iam.fix",
                target: &format!("aws/{role}"),
                before: serde_json::to_string(&before).ok(),
                after: serde_json::to_string(&after).ok(),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        let steps = result?;
        Ok(FixOutcome { plan, steps, change_id })
    }
}

#[async_trait::async_trait]
impl ReverterService for AwsIam {
    async fn revert(&self, id: i64) -> Result<ChangeRecord, ApiError> {
        let change = self.journal.get(id).await?;
        if !change.revertible || change.action != "iam.fix" {
            return Err(ApiError::Conflict(format!("change #{id} cannot be reverted (it failed, was already reverted, or is not an IAM fix)")));
        }
        let role = change.target.strip_prefix("aws/").unwrap_or(&change.target).to_string();
        let target: RolePermissions = serde_json::from_str(change.before.as_deref().unwrap_or("{}"))
            .map_err(|e| ApiError::Internal(format!("change #{id} has an unreadable before-state: {e}")))?;
        let current = RolePermissions::of(&self.role(&role).await?);
        let result = self.set_permissions(&role, &current, &target).await;
        let new_id = self
            .journal
            .record_revert(
                Change {
                    backend: "aws",
                    action: "iam.fix",
                    target: &change.target,
                    before: serde_json::to_string(&current).ok(),
                    after: change.before.clone(),
                    outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
                },
                id,
            )
            .await;
        result?;
        self.journal.get(new_id.ok_or_else(|| ApiError::Internal("the rollback was applied but not journaled".into()))?).await
    }
}

/// `sagedeck iam-review FILE`: the same review, offline, as JSON on stdout.
#[derive(Debug, clap::Args)]
pub struct IamReviewArgs {
    /// Output of `aws iam get-account-authorization-details`.
    pub file: std::path::PathBuf,
    /// Roles unused for longer than this many days are findings.
    #[arg(long, default_value_t = 90)]
    pub unused_days: u32,
}

pub fn review_command(args: IamReviewArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let review = app::iam::review_file(&args.file.display().to_string(), &text, now, args.unused_days).map_err(anyhow::Error::msg)?;
    let reports: Vec<_> = review.roles.iter().map(|r| &r.report).collect();
    println!("{}", serde_json::to_string_pretty(&reports)?);
    Ok(())
}
