//! Least-privilege fixes: the scoped policy a role should have had, built
//! from the deployment's own ARNs, and what the role could do before and
//! after (the same evaluation the analyzer uses). Pure.

use super::analyze::{analyze_role, allows_for, PolicyInput, PolicyKind, RoleInput, RoleReport};
use serde::{Deserialize, Serialize};

/// The name of the inline policy a Lambda fix puts (also the Lambda set-up's).
pub const SCOPED_POLICY_NAME: &str = "invoke-one-endpoint";
/// The name of the inline policy a SageMaker execution role's fix puts.
pub const EXECUTION_POLICY_NAME: &str = "sagedeck-least-privilege";

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

/// `s3://bucket/prefix` → (bucket, prefix without a trailing slash).
pub fn split_s3(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_end_matches('/').to_string()))
}

/// A SageMaker execution role: read its inputs, write its outputs (by
/// bucket and prefix, from the jobs that use it), its own logs and metrics,
/// and pass itself to SageMaker only.
pub fn sagemaker_scoped_policy(role_arn: &str, inputs: &[String], outputs: &[String], region: &str, account: &str) -> serde_json::Value {
    let objects = |uris: &[String]| -> Vec<String> {
        let mut v: Vec<String> = uris
            .iter()
            .filter_map(|u| split_s3(u))
            .map(|(b, p)| if p.is_empty() { format!("arn:aws:s3:::{b}/*") } else { format!("arn:aws:s3:::{b}/{p}/*") })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut buckets: Vec<String> = inputs.iter().chain(outputs).filter_map(|u| split_s3(u)).map(|(b, _)| format!("arn:aws:s3:::{b}")).collect();
    buckets.sort();
    buckets.dedup();
    let mut prefixes: Vec<String> = inputs.iter().chain(outputs).filter_map(|u| split_s3(u)).map(|(_, p)| if p.is_empty() { "*".into() } else { format!("{p}/*") }).collect();
    prefixes.sort();
    prefixes.dedup();
    let mut statements = Vec::new();
    if !inputs.is_empty() || !outputs.is_empty() {
        statements.push(serde_json::json!({ "Sid": "ListItsPrefixes", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": buckets,
            "Condition": { "StringLike": { "s3:prefix": prefixes } } }));
    }
    let readable: Vec<String> = objects(&[inputs, outputs].concat());
    if !readable.is_empty() {
        statements.push(serde_json::json!({ "Sid": "ReadItsData", "Effect": "Allow", "Action": "s3:GetObject", "Resource": readable }));
    }
    if !outputs.is_empty() {
        statements.push(serde_json::json!({ "Sid": "WriteItsOutput", "Effect": "Allow", "Action": "s3:PutObject", "Resource": objects(outputs) }));
    }
    statements.push(serde_json::json!({ "Sid": "ItsLogs", "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        "Resource": format!("arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*") }));
    statements.push(serde_json::json!({ "Sid": "ItsMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
        "Condition": { "StringLike": { "cloudwatch:namespace": "/aws/sagemaker/*" } } }));
    statements.push(serde_json::json!({ "Sid": "PassItselfToSageMakerOnly", "Effect": "Allow", "Action": "iam:PassRole", "Resource": role_arn,
        "Condition": { "StringEquals": { "iam:PassedToService": "sagemaker.amazonaws.com" } } }));
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The fix for a SageMaker execution role, from the S3 locations of the
/// jobs and models that use it.
pub fn plan_sagemaker_fix(role: &RoleInput, inputs: &[String], outputs: &[String], region: &str, now: i64) -> FixPlan {
    let account = role.arn.split(':').nth(4).unwrap_or_default();
    let scoped = serde_json::to_string_pretty(&sagemaker_scoped_policy(&role.arn, inputs, outputs, region, account)).unwrap_or_default();
    let some_input = inputs.first().or(outputs.first()).and_then(|u| split_s3(u)).map(|(b, p)| format!("arn:aws:s3:::{b}/{p}/x")).unwrap_or_default();
    let some_output = outputs.first().and_then(|u| split_s3(u)).map(|(b, p)| format!("arn:aws:s3:::{b}/{p}/x")).unwrap_or_default();
    let probes = vec![
        ("Read its data".to_string(), "s3:GetObject".to_string(), some_input),
        ("Write its output".into(), "s3:PutObject".into(), some_output),
        ("Read another bucket".into(), "s3:GetObject".into(), "arn:aws:s3:::someone-elses-bucket/x".into()),
        ("Write its logs".into(), "logs:PutLogEvents".into(), format!("arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs:log-stream:x")),
        ("Pass itself to SageMaker".into(), "iam:PassRole".into(), role.arn.clone()),
        ("Pass another role".into(), "iam:PassRole".into(), format!("arn:aws:iam::{account}:role/admin")),
        ("Create a notebook instance".into(), "sagemaker:CreateNotebookInstance".into(), format!("arn:aws:sagemaker:{region}:{account}:notebook-instance/x")),
        ("Read secrets".into(), "secretsmanager:GetSecretValue".into(), format!("arn:aws:secretsmanager:{region}:{account}:secret:x")),
    ];
    plan_with(role, EXECUTION_POLICY_NAME, scoped, format!("{} job input(s) and {} output location(s)", inputs.len(), outputs.len()), probes, now)
}

fn plan_with(role: &RoleInput, name: &str, scoped: String, based_on: String, probes: Vec<(String, String, String)>, now: i64) -> FixPlan {
    let detach: Vec<(String, String)> =
        role.policies.iter().filter(|p| p.kind != PolicyKind::Inline).filter_map(|p| p.arn.clone().map(|a| (p.name.clone(), a))).collect();
    let delete_inline: Vec<String> =
        role.policies.iter().filter(|p| p.kind == PolicyKind::Inline && p.name != name).map(|p| p.name.clone()).collect();
    let fixed = RoleInput {
        policies: vec![PolicyInput { name: name.into(), arn: None, kind: PolicyKind::Inline, document: scoped.clone() }],
        ..role.clone()
    };
    let capabilities = probes
        .into_iter()
        .filter(|(_, _, resource)| !resource.is_empty())
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
        based_on,
        put_inline: (name.into(), scoped),
        detach,
        delete_inline,
        before: analyze_role(role, now, 3650),
        after: analyze_role(&fixed, now, 3650),
        capabilities,
    }
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
    let probes = probes(endpoint_arn, account, region, function);
    plan_with(role, SCOPED_POLICY_NAME, scoped, format!("function {function} → endpoint {endpoint_arn}"), probes, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A role `service` assumes, with AWS's real AmazonSageMakerFullAccess attached.
    fn full_access_role(name: &str, arn: &str, service: &str) -> RoleInput {
        RoleInput {
            name: name.into(),
            arn: arn.into(),
            created: Some(0),
            last_used: Some(0),
            trust: Some(format!(r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#)),
            policies: vec![PolicyInput {
                name: "AmazonSageMakerFullAccess".into(),
                arn: Some("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".into()),
                kind: PolicyKind::AwsManaged,
                document: include_str!("fixtures/AmazonSageMakerFullAccess.json").into(),
            }],
            boundary: None,
        }
    }

    #[test]
    fn the_lambda_fix_keeps_the_endpoint_and_drops_the_rest() {
        let role = full_access_role("dogs-lambda-role", "arn:aws:iam::123456789012:role/dogs-lambda-role", "lambda.amazonaws.com");
        let plan = plan_lambda_fix(&role, "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs", "us-east-1", "dogs-invoke", 0);
        assert_eq!(plan.detach, [("AmazonSageMakerFullAccess".to_string(), "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".to_string())]);
        assert!(plan.after.findings.is_empty(), "{:#?}", plan.after.findings);
        assert_eq!(plan.before.score, crate::iam::rank::IAM_CONTROL.score, "{}", plan.before.reach);
        assert_eq!(plan.after.score, crate::iam::rank::SCOPED_WRITES.score, "{}", plan.after.reach);
        let get = |what: &str| plan.capabilities.iter().find(|c| c.what == what).unwrap();
        assert!(get("Invoke its endpoint").before && get("Invoke its endpoint").after);
        assert!(get("Create a training job").before && !get("Create a training job").after);
        assert!(get("Pass a role to a service").before && !get("Pass a role to a service").after);
        assert!(!get("Invoke any other endpoint").after);
        assert!(get("Write its own logs").after);
    }

    #[test]
    fn the_sagemaker_fix_scopes_s3_and_passrole() {
        let role = full_access_role("exec", "arn:aws:iam::123456789012:role/service-role/exec", "sagemaker.amazonaws.com");
        let plan = plan_sagemaker_fix(&role, &["s3://dogs/train/".into()], &["s3://dogs/output".into()], "us-east-1", 0);
        let doc = &plan.put_inline.1;
        assert!(doc.contains("arn:aws:s3:::dogs/train/*") && doc.contains("arn:aws:s3:::dogs/output/*"), "{doc}");
        assert!(doc.contains("iam:PassedToService"));
        assert!(plan.after.findings.is_empty(), "{:#?}", plan.after.findings);
        let get = |what: &str| plan.capabilities.iter().find(|c| c.what == what).unwrap().clone();
        assert!(get("Read its data").after && get("Write its output").after && get("Pass itself to SageMaker").after);
        assert!(!get("Read another bucket").after && !get("Pass another role").after && !get("Create a notebook instance").after);
        assert!(get("Create a notebook instance").before);
        assert_eq!(split_s3("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(split_s3("https://x"), None);
    }
}
