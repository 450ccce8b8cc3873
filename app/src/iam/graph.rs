//! The ML stack as a graph: who may assume each role → the role → its
//! policies → what it can do (invoke which endpoints, create jobs, pass
//! roles, read secrets, change IAM), coloured by severity. Built from a
//! review; pure, drawn as SVG by the page.

use super::analyze::{allows_for, Finding, RoleInput, Severity};
use super::AccountReview;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// 0 principals, 1 roles, 2 policies, 3 capabilities.
    pub column: u8,
    pub label: String,
    pub severity: Option<Severity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// (from, to, severity of the link).
    pub edges: Vec<(usize, usize, Option<Severity>)>,
}

impl Graph {
    fn node(&mut self, column: u8, label: &str, severity: Option<Severity>) -> usize {
        if let Some(i) = self.nodes.iter().position(|n| n.column == column && n.label == label) {
            let n = &mut self.nodes[i];
            n.severity = n.severity.max(severity);
            return i;
        }
        self.nodes.push(Node { column, label: label.to_string(), severity });
        self.nodes.len() - 1
    }
}

fn worst<'a>(findings: impl Iterator<Item = &'a Finding>) -> Option<Severity> {
    findings.map(|f| f.severity).max()
}

/// Endpoint ARNs named in a role's documents.
fn named_endpoints(docs: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = docs
        .iter()
        .flat_map(|d| d.split('"'))
        .filter(|s| s.starts_with("arn:aws:sagemaker:") && s.contains(":endpoint/") && !s.contains('*'))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn build(review: &AccountReview) -> Graph {
    let mut g = Graph::default();
    for r in &review.roles {
        let role = g.node(1, &r.report.name, worst(r.report.findings.iter()));
        let trust_findings: Vec<&Finding> = r.report.findings.iter().filter(|f| f.policy.as_deref() == Some("trust policy")).collect();
        for who in &r.report.trusted_by {
            let sev = worst(trust_findings.iter().copied());
            let p = g.node(0, who, sev);
            g.edges.push((p, role, sev));
        }
        let mut policy_nodes = Vec::new();
        for p in &r.input.policies {
            let sev = worst(r.report.findings.iter().filter(|f| f.policy.as_deref() == Some(p.name.as_str()) || (f.rule == "managed-full-access" && f.title.starts_with(&p.name))));
            let n = g.node(2, &p.name, sev);
            g.edges.push((role, n, sev));
            policy_nodes.push((n, RoleInput { policies: vec![p.clone()], ..r.input.clone() }));
        }
        let account = r.input.arn.split(':').nth(4).unwrap_or("*");
        let can = |action: &str, resource: &str| allows_for(&r.input, action, resource);
        // (label, action, resource, severity) of what the role can do.
        let mut caps: Vec<(String, String, String, Option<Severity>)> = Vec::new();
        let any_endpoint = format!("arn:aws:sagemaker:us-east-1:{account}:endpoint/any-endpoint");
        if can("sagemaker:InvokeEndpoint", &any_endpoint) {
            caps.push(("invoke any endpoint".into(), "sagemaker:InvokeEndpoint".into(), any_endpoint, Some(Severity::High)));
        } else {
            let docs: Vec<&str> = r.input.policies.iter().map(|p| p.document.as_str()).collect();
            for arn in named_endpoints(&docs) {
                if can("sagemaker:InvokeEndpoint", &arn) {
                    caps.push((format!("invoke {}", arn.rsplit('/').next().unwrap_or(&arn)), "sagemaker:InvokeEndpoint".into(), arn.clone(), None));
                }
            }
        }
        for (label, action, resource, sev) in [
            ("create training jobs", "sagemaker:CreateTrainingJob", format!("arn:aws:sagemaker:us-east-1:{account}:training-job/x"), Severity::High),
            ("create notebooks", "sagemaker:CreateNotebookInstance", format!("arn:aws:sagemaker:us-east-1:{account}:notebook-instance/x"), Severity::High),
            ("pass roles", "iam:PassRole", format!("arn:aws:iam::{account}:role/x"), Severity::High),
            ("read secrets", "secretsmanager:GetSecretValue", format!("arn:aws:secretsmanager:us-east-1:{account}:secret:x"), Severity::High),
            ("change IAM", "iam:PutRolePolicy", format!("arn:aws:iam::{account}:role/x"), Severity::Critical),
        ] {
            if can(action, &resource) {
                caps.push((label.to_string(), action.to_string(), resource, Some(sev)));
            }
        }
        // Each capability hangs off the policy that grants it on its own;
        // off the role when only a combination of policies does.
        for (label, action, resource, sev) in caps {
            let c = g.node(3, &label, sev);
            let from: Vec<usize> = policy_nodes.iter().filter(|(_, alone)| allows_for(alone, &action, &resource)).map(|(n, _)| *n).collect();
            if from.is_empty() {
                g.edges.push((role, c, sev));
            }
            for n in from {
                if !g.edges.contains(&(n, c, sev)) {
                    g.edges.push((n, c, sev));
                }
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::analyze::{PolicyInput, PolicyKind};

    #[test]
    fn a_scoped_lambda_role_reaches_its_endpoint_only() {
        let role = RoleInput {
            name: "scoped".into(),
            arn: "arn:aws:iam::123456789012:role/scoped".into(),
            created: None,
            last_used: None,
            trust: Some(r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into()),
            policies: vec![PolicyInput {
                name: "scoped".into(),
                arn: None,
                kind: PolicyKind::Inline,
                document: r#"{"Statement":[{"Effect":"Allow","Action":"sagemaker:InvokeEndpoint","Resource":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs"}]}"#.into(),
            }],
            boundary: None,
        };
        let full = RoleInput {
            name: "wide".into(),
            policies: vec![PolicyInput { name: "all".into(), arn: None, kind: PolicyKind::Inline, document: r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into() }],
            ..role.clone()
        };
        let review = crate::iam::review("test".into(), vec![role, full], 0, 90);
        let g = build(&review);
        let labels = |col: u8| g.nodes.iter().filter(|n| n.column == col).map(|n| n.label.clone()).collect::<Vec<_>>();
        assert_eq!(labels(0), ["lambda.amazonaws.com"]);
        assert!(labels(3).contains(&"invoke dogs".to_string()));
        assert!(labels(3).contains(&"change IAM".to_string()));
        let wide = g.nodes.iter().position(|n| n.label == "wide").unwrap();
        let scoped = g.nodes.iter().position(|n| n.label == "scoped" && n.column == 1).unwrap();
        // Capabilities hang off the policies that grant them.
        let reached = |role: usize| {
            let policies: Vec<usize> = g.edges.iter().filter(|e| e.0 == role).map(|e| e.1).collect();
            g.edges.iter().filter(|e| policies.contains(&e.0) && g.nodes[e.1].column == 3).count()
        };
        assert_eq!(reached(scoped), 1, "the scoped role reaches one thing");
        assert_eq!(reached(wide), 6);
        assert_eq!(g.nodes[wide].severity, Some(Severity::Critical));
    }
}
