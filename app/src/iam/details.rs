//! Reading `aws iam get-account-authorization-details` output: the roles
//! with their trust policy, inline policies, attached managed policies (their
//! default versions from the file's Policies list) and permissions boundary.
//! Documents may be JSON objects (the CLI decodes them) or URL-encoded
//! strings (the raw API). Pure, so the browser reads a file on its own.

use super::analyze::{PolicyInput, PolicyKind, RoleInput};
use serde_json::Value;
use std::collections::HashMap;

/// A document as JSON text, whether it came as an object or URL-encoded.
pub fn document_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()),
        Value::Object(_) => serde_json::to_string(v).ok(),
        _ => None,
    }
}

/// RFC 3339 (`2026-11-22T10:00:00Z`, `…+00:00`, fractions allowed) to unix seconds.
pub fn unix_seconds(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == ':').collect();
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (hms.next()??, hms.next()??, hms.next().flatten().unwrap_or(0));
    let offset = match rest.rfind(['+', '-']) {
        Some(i) if rest[i..].len() == 6 && rest[i + 3..].starts_with(':') => {
            let sign = if &rest[i..=i] == "-" { -1 } else { 1 };
            let oh: i64 = rest[i + 1..i + 3].parse().ok()?;
            let om: i64 = rest[i + 4..i + 6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => 0,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s - offset)
}

/// The roles of an authorization-details document, or why it is not one.
pub fn roles(text: &str) -> Result<Vec<RoleInput>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
    let list = v
        .get("RoleDetailList")
        .and_then(Value::as_array)
        .ok_or("this is not get-account-authorization-details output: it has no RoleDetailList")?;
    // Managed policies: ARN → default version's document.
    let mut managed: HashMap<String, String> = HashMap::new();
    for p in v.get("Policies").and_then(Value::as_array).into_iter().flatten() {
        let (Some(arn), Some(versions)) = (p.get("Arn").and_then(Value::as_str), p.get("PolicyVersionList").and_then(Value::as_array)) else {
            continue;
        };
        let default = versions.iter().find(|ver| ver.get("IsDefaultVersion").and_then(Value::as_bool) == Some(true)).or(versions.first());
        if let Some(doc) = default.and_then(|ver| ver.get("Document")).and_then(document_text) {
            managed.insert(arn.to_string(), doc);
        }
    }
    let mut out = Vec::new();
    for r in list {
        let name = r.get("RoleName").and_then(Value::as_str).unwrap_or_default().to_string();
        let arn = r.get("Arn").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut policies: Vec<PolicyInput> = r
            .get("RolePolicyList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| PolicyInput {
                name: p.get("PolicyName").and_then(Value::as_str).unwrap_or_default().to_string(),
                arn: None,
                kind: PolicyKind::Inline,
                document: p.get("PolicyDocument").and_then(document_text).unwrap_or_default(),
            })
            .collect();
        for a in r.get("AttachedManagedPolicies").and_then(Value::as_array).into_iter().flatten() {
            let policy_arn = a.get("PolicyArn").and_then(Value::as_str).unwrap_or_default().to_string();
            policies.push(PolicyInput {
                name: a.get("PolicyName").and_then(Value::as_str).unwrap_or_default().to_string(),
                kind: if policy_arn.starts_with("arn:aws:iam::aws:policy/") { PolicyKind::AwsManaged } else { PolicyKind::CustomerManaged },
                // A managed policy missing from the file's Policies list is
                // judged by its name only (the document reads as empty).
                document: managed.get(&policy_arn).cloned().unwrap_or_default(),
                arn: Some(policy_arn),
            });
        }
        let boundary = r
            .get("PermissionsBoundary")
            .and_then(|b| b.get("PermissionsBoundaryArn"))
            .and_then(Value::as_str)
            .map(|b| PolicyInput {
                name: b.rsplit('/').next().unwrap_or(b).to_string(),
                arn: Some(b.to_string()),
                kind: PolicyKind::Boundary,
                document: managed.get(b).cloned().unwrap_or_default(),
            });
        out.push(RoleInput {
            name,
            arn,
            created: r.get("CreateDate").and_then(Value::as_str).and_then(unix_seconds),
            last_used: r.get("RoleLastUsed").and_then(|u| u.get("LastUsedDate")).and_then(Value::as_str).and_then(unix_seconds),
            trust: r.get("AssumeRolePolicyDocument").and_then(document_text),
            policies,
            boundary,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_to_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-11-22T10:00:00Z"), Some(1_795_341_600));
        assert_eq!(unix_seconds("2026-11-22T12:00:00+02:00"), Some(1_795_341_600));
        assert_eq!(unix_seconds("2026-11-22T10:00:00.123456+00:00"), Some(1_795_341_600));
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn roles_with_inline_managed_boundary_and_encoded_documents() {
        let file = r#"{
          "RoleDetailList": [{
            "RoleName": "lambda-role", "Arn": "arn:aws:iam::123456789012:role/lambda-role",
            "CreateDate": "2026-01-01T00:00:00Z",
            "AssumeRolePolicyDocument": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D",
            "RolePolicyList": [{"PolicyName": "scoped", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs"}]}}],
            "AttachedManagedPolicies": [{"PolicyName": "AmazonSageMakerFullAccess", "PolicyArn": "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"}],
            "PermissionsBoundary": {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/limit"},
            "RoleLastUsed": {"LastUsedDate": "2026-11-01T00:00:00Z"}
          }],
          "Policies": [
            {"PolicyName": "AmazonSageMakerFullAccess", "Arn": "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess",
             "PolicyVersionList": [{"Document": {"Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}]}, "IsDefaultVersion": true}]},
            {"PolicyName": "limit", "Arn": "arn:aws:iam::123456789012:policy/limit",
             "PolicyVersionList": [{"Document": {"Statement": [{"Effect": "Allow", "Action": "sagemaker:Invoke*", "Resource": "*"}]}, "IsDefaultVersion": false},
                                   {"Document": {"Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}]}, "IsDefaultVersion": true}]}
          ]
        }"#;
        let roles = roles(file).unwrap();
        assert_eq!(roles.len(), 1);
        let r = &roles[0];
        assert!(r.trust.as_deref().unwrap().contains("lambda.amazonaws.com"));
        assert_eq!(r.policies.len(), 2);
        assert_eq!(r.policies[1].kind, PolicyKind::AwsManaged);
        assert!(r.policies[1].document.contains("sagemaker:*"));
        assert!(r.boundary.as_ref().unwrap().document.contains("sagemaker:*"), "the default version");
        assert_eq!(r.last_used, unix_seconds("2026-11-01T00:00:00Z"));
        assert!(roles_err("[]").contains("RoleDetailList"));
        assert!(roles_err("{").contains("line 1"));
    }

    fn roles_err(text: &str) -> String {
        roles(text).unwrap_err()
    }
}
