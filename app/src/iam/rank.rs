//! How risky a role is, by what it can actually do: its effective
//! permissions (every policy, denies and the boundary considered) are probed
//! with concrete actions on concrete resources and put in the highest of
//! eight tiers, then who may use the role adds a little. Roles with the same
//! reach tie; a read-only role never ties with an administrator, however
//! many small findings it has. Pure; the page explains the scale with
//! [`SCALE`].

use serde::{Deserialize, Serialize};

/// What kind of principal uses the role, from its trust policy: the fix
/// advice differs (a Lambda invokes one endpoint; a SageMaker execution role
/// reads its data and writes its output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleKind {
    Lambda,
    SageMaker,
    /// Another AWS service (EC2, Glue, Step Functions…).
    Service,
    /// People or programs of this or another account, or a federated identity.
    Principals,
    #[default]
    Unknown,
}

impl RoleKind {
    pub fn from_trust(services: &[String], principals: bool) -> RoleKind {
        if services.iter().any(|s| s == "lambda.amazonaws.com") {
            RoleKind::Lambda
        } else if services.iter().any(|s| s == "sagemaker.amazonaws.com") {
            RoleKind::SageMaker
        } else if !services.is_empty() {
            RoleKind::Service
        } else if principals {
            RoleKind::Principals
        } else {
            RoleKind::Unknown
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RoleKind::Lambda => "Lambda function role",
            RoleKind::SageMaker => "SageMaker execution role",
            RoleKind::Service => "service role",
            RoleKind::Principals => "role people or accounts assume",
            RoleKind::Unknown => "role",
        }
    }

    /// What to keep instead of a service wildcard or a FullAccess policy.
    pub fn least_privilege(self) -> &'static str {
        match self {
            RoleKind::Lambda => "For the endpoint's Lambda: sagemaker:InvokeEndpoint on that endpoint and its own log group, as the Lambda page's set-up makes.",
            RoleKind::SageMaker => "For a SageMaker execution role: s3:GetObject/ListBucket on its data prefixes, s3:PutObject on its output prefixes, ECR pulls of its image, its own CloudWatch logs and metrics, and iam:PassRole on itself to sagemaker.amazonaws.com (the Fix button builds this from the jobs that ran as the role).",
            RoleKind::Service => "List the actions the service's workload calls, on the ARNs it uses.",
            RoleKind::Principals => "Grant the people or programs the actions of their task on named resources, and prefer separate read-only and operator roles.",
            RoleKind::Unknown => "List the actions the workload needs, on the ARNs it uses.",
        }
    }
}

/// One tier of reach: its base score and its words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    pub score: u32,
    pub label: &'static str,
}

pub const ADMINISTRATOR: Tier = Tier { score: 90, label: "administrator: every action on every resource" };
pub const IAM_CONTROL: Tier = Tier { score: 80, label: "can change IAM or act as any role, so can make itself administrator" };
pub const BROAD_CONTROL: Tier = Tier { score: 70, label: "broad control: runs code and changes data in many services" };
pub const DATA_EVERYWHERE: Tier = Tier { score: 55, label: "reads or changes data account-wide (objects, secrets, keys, tables)" };
pub const SERVICE_CONTROL: Tier = Tier { score: 40, label: "controls whole services (creates and deletes any of their resources)" };
pub const SCOPED_WRITES: Tier = Tier { score: 20, label: "changes named resources only" };
pub const READ_ONLY: Tier = Tier { score: 10, label: "reads only" };
pub const NOTHING: Tier = Tier { score: 0, label: "no permissions" };

/// The scale, as the page explains it.
pub const SCALE: &[(u32, &str)] = &[
    (90, "administrator"),
    (80, "can change IAM or act as any role"),
    (70, "broad control of many services"),
    (55, "data account-wide"),
    (40, "controls whole services"),
    (20, "changes named resources"),
    (10, "reads only"),
    (0, "nothing"),
];

/// Added for who may use the role: anyone +9, another account without an
/// ExternalId or MFA condition +5; unused for long +2.
pub const EXPOSURE_NOTE: &str = "plus up to 9 for who may use it: anyone +9, another account without ExternalId or MFA +5, unused for months +2";

/// Concrete requests that tell the tiers apart, on resources of `account`.
pub struct Probes {
    account: String,
}

impl Probes {
    pub fn new(account: &str) -> Self {
        Probes { account: if account.is_empty() { "123456789012".into() } else { account.to_string() } }
    }

    fn arn(&self, service: &str, rest: &str) -> String {
        match service {
            "s3" => format!("arn:aws:s3:::{rest}"),
            "iam" => format!("arn:aws:iam::{}:{rest}", self.account),
            _ => format!("arn:aws:{service}:us-east-1:{}:{rest}", self.account),
        }
    }

    /// Each action of `table` on its resource, an ARN of the action's own
    /// service (`*` stays `*`).
    fn on(&self, table: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        table
            .iter()
            .map(|&(action, rest)| {
                let service = action.split(':').next().unwrap_or_default();
                (action, if rest == "*" { rest.to_string() } else { self.arn(service, rest) })
            })
            .collect()
    }

    /// Every one of these on every resource: `Action: *`.
    pub fn administrator(&self) -> Vec<(&'static str, String)> {
        self.on(&[
            ("iam:CreateUser", "user/probe"),
            ("iam:PutRolePolicy", "role/probe"),
            ("organizations:LeaveOrganization", "*"),
            ("ec2:RunInstances", "instance/*"),
            ("s3:DeleteBucket", "probe-bucket"),
            ("kms:ScheduleKeyDeletion", "key/probe"),
            ("cloudtrail:StopLogging", "trail/probe"),
            ("sagemaker:CreateTrainingJob", "training-job/probe"),
        ])
    }

    /// Any one of these on another principal: control over IAM.
    pub fn iam_control(&self) -> Vec<(&'static str, String)> {
        self.on(&[
            ("iam:PutRolePolicy", "role/probe-administrator"),
            ("iam:AttachRolePolicy", "role/probe-administrator"),
            ("iam:UpdateAssumeRolePolicy", "role/probe-administrator"),
            ("iam:CreatePolicyVersion", "policy/probe"),
            ("iam:AttachUserPolicy", "user/probe"),
            ("iam:PutUserPolicy", "user/probe"),
            ("iam:CreateAccessKey", "user/probe"),
            ("iam:CreateLoginProfile", "user/probe"),
        ])
    }

    /// Most of these (services running code or holding data): broad control.
    pub fn broad(&self) -> Vec<(&'static str, String)> {
        self.on(&[
            ("ec2:RunInstances", "instance/*"),
            ("lambda:CreateFunction", "function:probe"),
            ("sagemaker:CreateTrainingJob", "training-job/probe"),
            ("ecs:RunTask", "task-definition/probe:1"),
            ("s3:DeleteObject", "probe-bucket/key"),
            ("dynamodb:DeleteTable", "table/probe"),
            ("rds:DeleteDBInstance", "db:probe"),
            ("cloudformation:CreateStack", "stack/probe/1"),
        ])
    }

    /// Any of these on a resource the role was not given by name.
    pub fn data(&self) -> Vec<(&'static str, String)> {
        self.on(&[
            ("s3:GetObject", "probe-bucket/key"),
            ("s3:PutObject", "probe-bucket/key"),
            ("s3:DeleteObject", "probe-bucket/key"),
            ("secretsmanager:GetSecretValue", "secret:probe"),
            ("ssm:GetParameter", "parameter/probe"),
            ("kms:Decrypt", "key/probe"),
            ("dynamodb:Scan", "table/probe"),
        ])
    }

    /// Creating or deleting any resource of a service.
    pub fn service_control(&self) -> Vec<(&'static str, String)> {
        self.on(&[
            ("sagemaker:DeleteEndpoint", "endpoint/probe"),
            ("sagemaker:CreateEndpoint", "endpoint/probe"),
            ("sagemaker:DeleteModel", "model/probe"),
            ("lambda:UpdateFunctionCode", "function:probe"),
            ("lambda:DeleteFunction", "function:probe"),
            ("ec2:TerminateInstances", "instance/i-probe"),
            ("s3:PutBucketPolicy", "probe-bucket"),
            ("logs:DeleteLogGroup", "log-group:probe"),
            ("application-autoscaling:RegisterScalableTarget", "*"),
        ])
    }
}

/// Whether an action name only reads (Get, List, Describe, Head…).
pub fn is_read(action: &str) -> bool {
    let name = action.split_once(':').map(|(_, n)| n).unwrap_or(action).to_ascii_lowercase();
    ["get", "list", "describe", "head", "search", "query", "scan", "batchget", "select", "view", "lookup"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The highest tier the role reaches. `can` answers for the effective
/// permissions; `escalates` says whether it may pass any role to a service
/// it can start; `allowed_actions` are the actions of its Allow statements
/// (for telling scoped writes from reads).
pub fn tier(can: &dyn Fn(&str, &str) -> bool, escalates: bool, probes: &Probes, allowed_actions: &[String], negated_allow: bool) -> Tier {
    let all = |list: Vec<(&'static str, String)>| list.iter().all(|(a, r)| can(a, r));
    let any = |list: Vec<(&'static str, String)>| list.iter().any(|(a, r)| can(a, r));
    let count = |list: Vec<(&'static str, String)>| list.iter().filter(|(a, r)| can(a, r)).count();
    if all(probes.administrator()) {
        ADMINISTRATOR
    } else if escalates || any(probes.iam_control()) {
        IAM_CONTROL
    } else if count(probes.broad()) >= 4 {
        BROAD_CONTROL
    } else if any(probes.data()) {
        DATA_EVERYWHERE
    } else if any(probes.service_control()) {
        SERVICE_CONTROL
    } else if negated_allow || allowed_actions.iter().any(|a| !is_read(a)) {
        SCOPED_WRITES
    } else if !allowed_actions.is_empty() {
        READ_ONLY
    } else {
        NOTHING
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_trust_policy() {
        assert_eq!(RoleKind::from_trust(&["lambda.amazonaws.com".into()], false), RoleKind::Lambda);
        assert_eq!(RoleKind::from_trust(&["sagemaker.amazonaws.com".into()], true), RoleKind::SageMaker);
        assert_eq!(RoleKind::from_trust(&["glue.amazonaws.com".into()], false), RoleKind::Service);
        assert_eq!(RoleKind::from_trust(&[], true), RoleKind::Principals);
        assert!(RoleKind::SageMaker.least_privilege().contains("s3:PutObject"));
        assert!(!RoleKind::SageMaker.least_privilege().contains("InvokeEndpoint"));
    }

    #[test]
    fn reads_are_told_from_writes() {
        for a in ["s3:GetObject", "ec2:DescribeInstances", "s3:ListBucket", "dynamodb:BatchGetItem", "s3:Get*"] {
            assert!(is_read(a), "{a}");
        }
        for a in ["s3:PutObject", "sagemaker:InvokeEndpoint", "iam:PassRole", "s3:*"] {
            assert!(!is_read(a), "{a}");
        }
    }

    #[test]
    fn tiers_follow_what_the_probes_may_do() {
        let probes = Probes::new("123456789012");
        let nothing = |_: &str, _: &str| false;
        let everything = |_: &str, _: &str| true;
        assert_eq!(tier(&everything, false, &probes, &["*".into()], false), ADMINISTRATOR);
        assert_eq!(tier(&nothing, true, &probes, &[], false), IAM_CONTROL);
        assert_eq!(tier(&|a: &str, _: &str| !a.starts_with("iam:") && !a.starts_with("organizations:"), false, &probes, &[], true), BROAD_CONTROL);
        assert_eq!(tier(&|a: &str, _: &str| a == "s3:GetObject", false, &probes, &["s3:GetObject".into()], false), DATA_EVERYWHERE);
        assert_eq!(tier(&|a: &str, _: &str| a.starts_with("sagemaker:"), false, &probes, &["sagemaker:*".into()], false), SERVICE_CONTROL);
        assert_eq!(tier(&nothing, false, &probes, &["sagemaker:InvokeEndpoint".into()], false), SCOPED_WRITES);
        assert_eq!(tier(&nothing, false, &probes, &["s3:GetObject".into()], false), READ_ONLY);
        assert_eq!(tier(&nothing, false, &probes, &[], false), NOTHING);
    }
}
