//! Least-privilege fixes: the scoped policy a role should have had, built
//! from the deployment's own ARNs, and what the role could do before and
//! after (the same evaluation the analyzer uses). Pure.

use super::analyze::{analyze_role, allows_for, PolicyInput, PolicyKind, RoleInput, RoleReport};
use serde::{Deserialize, Serialize};

/// The name of the inline policy a fix puts (also the Lambda set-up's).
pub const SCOPED_POLICY_NAME: &str = "invoke-one-endpoint";

/// The endpoint's Lambda: invoke this one endpoint, write this function's
/// own logs. Nothing else.
pub fn lambda_scoped_policy(endpoint_arn: &str, region: &str, account: &str, function: &str) -> serde_json::Value {
    let log_group = format!("arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function}");
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Sid": "InvokeThisEndpointOnly", "Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": endpoint_arn },
            { "Sid": "OwnLogGroup", "Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": format!("{log_group}:*") },
            { "Sid": "OwnLogStreams", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": format!("{log_group}:log-stream:*") }
        ]
    })
}

/// One line of the before/after table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capability {
    pub what: String,
    pub action: String,
    pub resource: String,
    pub before: bool,
    pub after: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixPlan {
    pub role: String,
    pub role_arn: String,
    /// What the plan is built from, in words.
    pub based_on: String,
    pub put_inline: (String, String),
    /// Managed policies to detach: (name, ARN).
    pub detach: Vec<(String, String)>,
    /// Inline policies to delete (over-broad ones other than the scoped one).
    pub delete_inline: Vec<String>,
    pub before: RoleReport,
    pub after: RoleReport,
    pub capabilities: Vec<Capability>,
}

/// The probes of the before/after table for an endpoint's Lambda role.
fn probes(endpoint_arn: &str, account: &str, region: &str, function: &str) -> Vec<(String, String, String)> {
    let other_endpoint = format!("arn:aws:sagemaker:{region}:{account}:endpoint/some-other-endpoint");
    let own_logs = format!("arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function}:log-stream:x");
    vec![
        ("Invoke its endpoint".into(), "sagemaker:InvokeEndpoint".into(), endpoint_arn.into()),
        ("Write its own logs".into(), "logs:PutLogEvents".into(), own_logs),
        ("Invoke any other endpoint".into(), "sagemaker:InvokeEndpoint".into(), other_endpoint),
        ("Create a training job".into(), "sagemaker:CreateTrainingJob".into(), format!("arn:aws:sagemaker:{region}:{account}:training-job/x")),
        ("Create a notebook instance".into(), "sagemaker:CreateNotebookInstance".into(), format!("arn:aws:sagemaker:{region}:{account}:notebook-instance/x")),
        ("Delete an endpoint".into(), "sagemaker:DeleteEndpoint".into(), endpoint_arn.into()),
        ("Pass a role to a service".into(), "iam:PassRole".into(), format!("arn:aws:iam::{account}:role/any")),
        ("Read any S3 object".into(), "s3:GetObject".into(), "arn:aws:s3:::any-bucket/any-key".into()),
        ("Read secrets".into(), "secretsmanager:GetSecretValue".into(), format!("arn:aws:secretsmanager:{region}:{account}:secret:x")),
    ]
}

/// The fix for a role a Lambda in front of `endpoint_arn` uses: put the
/// scoped policy; detach the AWS-managed FullAccess policies and delete the
/// other inline policies (their statements are what made it over-broad).
pub fn plan_lambda_fix(role: &RoleInput, endpoint_arn: &str, region: &str, function: &str, now: i64) -> FixPlan {
    let account = endpoint_arn.split(':').nth(4).unwrap_or_default();
    let scoped = serde_json::to_string_pretty(&lambda_scoped_policy(endpoint_arn, region, account, function)).unwrap_or_default();
    let detach: Vec<(String, String)> = role
        .policies
        .iter()
        .filter(|p| p.kind != PolicyKind::Inline)
        .filter_map(|p| p.arn.clone().map(|a| (p.name.clone(), a)))
        .collect();
    let delete_inline: Vec<String> = role
        .policies
        .iter()
        .filter(|p| p.kind == PolicyKind::Inline && p.name != SCOPED_POLICY_NAME)
        .map(|p| p.name.clone())
        .collect();
    let fixed = RoleInput {
        policies: vec![PolicyInput { name: SCOPED_POLICY_NAME.into(), arn: None, kind: PolicyKind::Inline, document: scoped.clone() }],
        ..role.clone()
    };
    let before = analyze_role(role, now, 3650);
    let after = analyze_role(&fixed, now, 3650);
    let capabilities = probes(endpoint_arn, account, region, function)
        .into_iter()
        .map(|(what, action, resource)| Capability {
            before: allows_for(role, &action, &resource),
            after: allows_for(&fixed, &action, &resource),
            what,
            action,
            resource,
        })
        .collect();
    FixPlan {
        role: role.name.clone(),
        role_arn: role.arn.clone(),
        based_on: format!("function {function} → endpoint {endpoint_arn}"),
        put_inline: (SCOPED_POLICY_NAME.into(), scoped),
        detach,
        delete_inline,
        before,
        after,
        capabilities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_fix_keeps_the_endpoint_and_drops_the_rest() {
        let full = include_str!("fixtures/AmazonSageMakerFullAccess.json");
        let role = RoleInput {
            name: "dogs-lambda-role".into(),
            arn: "arn:aws:iam::123456789012:role/dogs-lambda-role".into(),
            created: Some(0),
            last_used: Some(0),
            trust: Some(r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into()),
            policies: vec![PolicyInput {
                name: "AmazonSageMakerFullAccess".into(),
                arn: Some("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".into()),
                kind: PolicyKind::AwsManaged,
                document: full.into(),
            }],
            boundary: None,
        };
        let plan = plan_lambda_fix(&role, "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs", "us-east-1", "dogs-invoke", 0);
        assert_eq!(plan.detach, [("AmazonSageMakerFullAccess".to_string(), "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".to_string())]);
        assert!(plan.after.findings.is_empty(), "{:#?}", plan.after.findings);
        assert_eq!(plan.before.score, 100);
        assert_eq!(plan.after.score, 0);
        let get = |what: &str| plan.capabilities.iter().find(|c| c.what == what).unwrap();
        assert!(get("Invoke its endpoint").before && get("Invoke its endpoint").after);
        assert!(get("Create a training job").before && !get("Create a training job").after);
        assert!(get("Pass a role to a service").before && !get("Pass a role to a service").after);
        assert!(!get("Invoke any other endpoint").after);
        assert!(get("Write its own logs").after);
    }
}
