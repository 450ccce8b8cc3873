//! The IAM review of the live account: GetAccountAuthorizationDetails
//! (paginated, roles and customer-managed policies; documents arrive
//! URL-encoded), the default versions of the AWS-managed policies the roles
//! attach, and GetRole for each role's RoleLastUsed. The judging itself is
//! `app::iam::analyze`, the same code the browser runs on a file.

use crate::aws::{from_sdk, Aws};
use app::iam::analyze::{PolicyInput, PolicyKind, RoleInput};
use app::iam::{review, AccountReview, IamService};
use app::ApiError;
use aws_sdk_iam::types::EntityType;
use std::collections::HashMap;
use std::sync::Arc;

pub struct AwsIam {
    aws: Arc<Aws>,
}

fn decode(doc: &str) -> String {
    percent_encoding::percent_decode_str(doc).decode_utf8_lossy().into_owned()
}

fn seconds(t: &aws_sdk_iam::primitives::DateTime) -> i64 {
    t.secs()
}

impl AwsIam {
    pub fn new(aws: Arc<Aws>) -> Self {
        Self { aws }
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
