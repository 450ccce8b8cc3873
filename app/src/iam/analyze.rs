//! The risk analyzer: judges one policy document (the live editor) or one
//! role as a whole (trust policy; inline, managed and boundary policies
//! together). Conditions are taken as satisfiable (the worst case), except
//! where a rule is about a condition's absence. Pure, compiled into the
//! server and the browser alike.

use super::policy::{self, glob, Effect, PolicyError, Statement};
use super::rank::{self, Probes, RoleKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's id: `managed-full-access`, `action-wildcard`…
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    /// The risk in plain words.
    pub risk: String,
    pub fix: String,
    /// The policy it is in (its name), or "trust policy"; None for the role.
    pub policy: Option<String>,
    /// JSON pointer to the statement's field: `/Statement/1/Resource`.
    pub pointer: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    Inline,
    AwsManaged,
    CustomerManaged,
    Boundary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyInput {
    pub name: String,
    pub arn: Option<String>,
    pub kind: PolicyKind,
    /// The document as JSON text.
    pub document: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleInput {
    pub name: String,
    pub arn: String,
    /// Unix seconds.
    pub created: Option<i64>,
    pub last_used: Option<i64>,
    pub trust: Option<String>,
    pub policies: Vec<PolicyInput>,
    pub boundary: Option<PolicyInput>,
}

/// A role's review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleReport {
    pub name: String,
    pub arn: String,
    /// What it can do (the tier, 0–90) plus who may use it (0–9): see [`rank`].
    pub score: u32,
    /// The tier in words: "administrator: every action on every resource".
    #[serde(default)]
    pub reach: String,
    #[serde(default)]
    pub kind: RoleKind,
    pub findings: Vec<Finding>,
    /// Who may assume it: services and account principals.
    pub trusted_by: Vec<String>,
    /// Documents that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

/// Actions that accept a resource ARN, so `"Resource": "*"` on them grants
/// more than needed. (Lists and account-wide reads such as
/// `s3:ListAllMyBuckets` or `ecr:GetAuthorizationToken` take only `*`.)
const RESOURCE_SCOPED: &[&str] = &[
    "sagemaker:InvokeEndpoint*",
    "sagemaker:Create*",
    "sagemaker:Delete*",
    "sagemaker:Update*",
    "sagemaker:Stop*",
    "sagemaker:Start*",
    "sagemaker:Describe*",
    "s3:GetObject*",
    "s3:PutObject*",
    "s3:DeleteObject*",
    "s3:ListBucket",
    "lambda:InvokeFunction",
    "lambda:*Function*",
    "iam:PassRole",
    "iam:*Role*",
    "iam:*Policy*",
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter*",
    "kms:Decrypt",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:CreateLogGroup",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "dynamodb:*Item",
];

/// Reading these on every resource exposes credentials or data.
const EXPOSURE: &[(&str, &str)] = &[
    ("secretsmanager:GetSecretValue", "every secret in the account"),
    ("ssm:GetParameter", "every SSM parameter, secure strings included"),
    ("ssm:GetParameters", "every SSM parameter, secure strings included"),
    ("s3:GetObject", "every object in every bucket"),
];

/// These return credentials in their answer.
const CREDENTIALS: &[&str] = &[
    "ecr:GetAuthorizationToken",
    "sts:GetSessionToken",
    "sts:GetFederationToken",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "sagemaker:CreatePresignedDomainUrl",
    "sagemaker:CreatePresignedNotebookInstanceUrl",
    "redshift:GetClusterCredentials",
    "rds-db:connect",
    "codeartifact:GetAuthorizationToken",
];

/// These change who else may reach a resource (resource-based policies,
/// grants, ENI permissions).
const RESOURCE_EXPOSURE: &[&str] = &[
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterfacePermission",
    "s3:PutBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "lambda:AddPermission",
    "kms:CreateGrant",
    "kms:PutKeyPolicy",
    "secretsmanager:PutResourcePolicy",
    "ecr:SetRepositoryPolicy",
    "sns:AddPermission",
    "sqs:AddPermission",
    "sagemaker:PutModelPackageGroupPolicy",
];

/// A role that holds one of these on itself can grant itself anything.
const SELF_MODIFY: &[&str] = &[
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRolePermissionsBoundary",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
];

/// Creating these with PassRole runs code as the passed role.
const PASSROLE_ESCALATION: &[&str] = &["sagemaker:CreateTrainingJob", "sagemaker:CreateNotebookInstance", "sagemaker:CreateProcessingJob"];

/// `iam:ListRoles`, `lambda:ListFunctions`: account-wide listings that take
/// only `"Resource": "*"`.
fn is_list(action: &str) -> bool {
    action.split_once(':').is_some_and(|(_, name)| name.to_ascii_lowercase().starts_with("list"))
}

fn finding(rule: &str, severity: Severity, title: String, risk: String, fix: String, policy: Option<&str>, pointer: Option<String>) -> Finding {
    Finding { rule: rule.into(), severity, title, risk, fix, policy: policy.map(str::to_string), pointer }
}

/// The statement-level rules on one permissions document; `kind` (who uses
/// the role) picks the fix advice.
pub fn document_findings(statements: &[Statement], policy: Option<&str>, kind: RoleKind) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in statements.iter().filter(|s| s.effect == Effect::Allow) {
        let at = |field: &str| Some(format!("{}/{field}", s.pointer));
        let action_field = if s.action.negated { "NotAction" } else { "Action" };
        if s.action.negated {
            out.push(finding(
                "allow-not-action",
                Severity::High,
                format!("Allow with NotAction ({})", s.action.values.join(", ")),
                "Allow + NotAction grants every action except the listed ones, including every action AWS adds later.".into(),
                "List the actions the role needs under Action instead.".into(),
                policy,
                at("NotAction"),
            ));
        }
        if s.resource.negated {
            out.push(finding(
                "allow-not-resource",
                Severity::High,
                "Allow with NotResource".into(),
                "Allow + NotResource applies to every resource except the listed ones, present and future.".into(),
                "List the resources the role needs under Resource instead.".into(),
                policy,
                at("NotResource"),
            ));
        }
        if s.action.negated {
            continue;
        }
        let any_resource = !s.resource.negated && s.resource.values.iter().any(|r| r == "*");
        if s.action.values.iter().any(|a| a == "*") {
            out.push(finding(
                "action-wildcard",
                Severity::Critical,
                format!("\"Action\": \"*\"{}", if any_resource { " on \"Resource\": \"*\"" } else { "" }),
                "Every action of every service: this is administrator access.".into(),
                "Replace * with the actions the role needs.".into(),
                policy,
                at(action_field),
            ));
            continue;
        }
        for a in s.action.values.iter().filter(|a| a.ends_with(":*")) {
            // On every resource it is the whole service; on named ones, less.
            let everywhere = any_resource || s.resource.negated;
            out.push(finding(
                "service-wildcard",
                if everywhere { Severity::High } else { Severity::Medium },
                format!("Service wildcard {a}{}", if everywhere { "" } else { " on named resources" }),
                format!("{a} grants every {} action, including destructive and privileged ones (and any added later).", a.trim_end_matches(":*")),
                format!("List the actions needed. {}", kind.least_privilege()),
                policy,
                at(action_field),
            ));
        }
        if any_resource {
            let scoped: Vec<&String> = s
                .action
                .values
                .iter()
                .filter(|a| !a.ends_with(":*") && !is_list(a) && RESOURCE_SCOPED.iter().any(|p| glob(p, a, true) || glob(a, p, true)))
                .collect();
            if !scoped.is_empty() {
                out.push(finding(
                    "resource-wildcard",
                    Severity::Medium,
                    format!("\"Resource\": \"*\" on {}", scoped.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
                    "These actions accept resource ARNs, but this statement applies them to every resource in the account.".into(),
                    "Name the ARNs (the endpoint, the bucket and prefix, the role) in Resource.".into(),
                    policy,
                    at("Resource"),
                ));
            }
            for (action, what) in EXPOSURE {
                if s.action.covers(action, true) && s.action.values.iter().all(|a| a != "*") {
                    out.push(finding(
                        "unscoped-exposure",
                        Severity::High,
                        format!("{action} on every resource"),
                        format!("The role can read {what}: credentials and data it has no need for can leave through it."),
                        format!("Scope {action} to the ARNs the role reads."),
                        policy,
                        at("Resource"),
                    ));
                }
            }
        }
        // Named actions only: a wildcard already has its own finding.
        let named = |list: &[&str]| -> Vec<String> {
            list.iter().filter(|a| s.action.values.iter().any(|v| !v.contains('*') && v.eq_ignore_ascii_case(a))).map(|a| a.to_string()).collect()
        };
        let credentials = named(CREDENTIALS);
        if !credentials.is_empty() {
            out.push(finding(
                "credentials-exposure",
                Severity::Medium,
                format!("Returns credentials: {}", credentials.join(", ")),
                "These actions hand out credentials or signed URLs; whoever holds the role can pass them on.".into(),
                "Keep them only where the workload needs them (a training role pulling its image needs ecr:GetAuthorizationToken; a Lambda that invokes an endpoint does not).".into(),
                policy,
                at(action_field),
            ));
        }
        let exposure = named(RESOURCE_EXPOSURE);
        if !exposure.is_empty() && any_resource {
            out.push(finding(
                "resource-exposure",
                Severity::High,
                format!("Can open resources to others: {}", exposure.join(", ")),
                "These actions change resource-based policies, grants or permissions, on every resource: the role can share data or access with anyone.".into(),
                "Remove them, or name the resources they may change.".into(),
                policy,
                at("Resource"),
            ));
        }
        if s.action.covers("iam:PassRole", true) {
            // "*", arn:aws:iam::*:role/*: every role of the account.
            let every_role = any_resource || s.resource.values.iter().any(|r| r.ends_with(":role/*"));
            if every_role {
                out.push(finding(
                    "passrole-wildcard",
                    Severity::High,
                    "iam:PassRole on every role".into(),
                    "The role can hand any role in the account, an administrator's included, to a service that will run as it.".into(),
                    "Name the execution roles it may pass in Resource.".into(),
                    policy,
                    at("Resource"),
                ));
            }
            if !s.has_condition("iam:PassedToService") {
                out.push(finding(
                    "passrole-unconditioned",
                    Severity::Medium,
                    "iam:PassRole without an iam:PassedToService condition".into(),
                    "The roles it may pass can be handed to any service, not only the one that needs them.".into(),
                    "Add \"Condition\": {\"StringEquals\": {\"iam:PassedToService\": \"sagemaker.amazonaws.com\"}}.".into(),
                    policy,
                    Some(s.pointer.clone()),
                ));
            }
        }
    }
    out
}

/// The live editor's check: the statement rules on a document, or where its JSON breaks.
pub fn analyze_document(text: &str) -> Result<Vec<Finding>, PolicyError> {
    let statements = policy::parse(text)?;
    Ok(document_findings(&statements, None, RoleKind::Unknown))
}

/// Whether the role's permissions allow `action` on `resource`: some Allow
/// covers it, no Deny does, and the boundary (if any) allows it too.
fn allows(permissions: &[Statement], boundary: Option<&[Statement]>, action: &str, resource: &str) -> bool {
    let hit = |s: &&Statement| s.action.covers(action, true) && s.resource.covers(resource, false);
    let allowed = |list: &[Statement]| {
        list.iter().filter(|s| s.effect == Effect::Allow).any(|s| hit(&s)) && !list.iter().filter(|s| s.effect == Effect::Deny).any(|s| hit(&s))
    };
    allowed(permissions) && boundary.is_none_or(allowed)
}

/// Whether `role` may do `action` on `resource`, all its policies, denies
/// and boundary considered (conditions taken as met).
pub fn allows_for(role: &RoleInput, action: &str, resource: &str) -> bool {
    let permissions: Vec<Statement> = role.policies.iter().filter_map(|p| policy::parse(&p.document).ok()).flatten().collect();
    let boundary = role.boundary.as_ref().and_then(|b| policy::parse(&b.document).ok());
    allows(&permissions, boundary.as_deref(), action, resource)
}

/// Whether a statement's iam:PassedToService condition (when it has one that
/// names services) lets the role go to `service`. Other conditions, and
/// negated operators, are taken as met (the worst case).
fn passes_to(s: &Statement, service: &str) -> bool {
    let Value::Object(ops) = &s.condition else { return true };
    let mut named: Vec<&str> = Vec::new();
    for (op, block) in ops {
        let op = op.to_ascii_lowercase();
        if op.contains("not") || !(op.contains("stringequals") || op.contains("stringlike")) {
            continue;
        }
        let Value::Object(kv) = block else { continue };
        for (key, values) in kv.iter().filter(|(k, _)| k.eq_ignore_ascii_case("iam:PassedToService")) {
            let _ = key;
            match values {
                Value::String(v) => named.push(v),
                Value::Array(a) => named.extend(a.iter().filter_map(Value::as_str)),
                _ => {}
            }
        }
    }
    named.is_empty() || named.iter().any(|v| glob(v, service, true))
}

/// Whether the role may pass `target` (a role ARN) to `service`.
fn may_pass(permissions: &[Statement], boundary: Option<&[Statement]>, service: &str, target: &str) -> bool {
    let hit = |s: &&Statement| s.action.covers("iam:PassRole", true) && s.resource.covers(target, false) && passes_to(s, service);
    let allowed = |list: &[Statement]| {
        list.iter().filter(|s| s.effect == Effect::Allow).any(|s| hit(&s)) && !list.iter().filter(|s| s.effect == Effect::Deny).any(|s| hit(&s))
    };
    allowed(permissions) && boundary.is_none_or(allowed)
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The whole review of one role at `now` (unix seconds).
pub fn analyze_role(role: &RoleInput, now: i64, unused_days: u32) -> RoleReport {
    let mut findings = Vec::new();
    let mut unreadable = Vec::new();
    let mut trusted_by = Vec::new();

    // Trust.
    let mut lambda_trusted = false;
    let mut services: Vec<String> = Vec::new();
    let mut principals = false;
    if let Some(trust) = &role.trust {
        match policy::parse(trust) {
            Err(e) => unreadable.push(("trust policy".to_string(), e.to_string())),
            Ok(statements) => {
                for s in statements.iter().filter(|s| s.effect == Effect::Allow) {
                    let Some(p) = &s.principal else { continue };
                    trusted_by.extend(p.service.iter().cloned());
                    trusted_by.extend(p.aws.iter().cloned());
                    trusted_by.extend(p.federated.iter().cloned());
                    lambda_trusted |= p.service.iter().any(|x| x == "lambda.amazonaws.com");
                    services.extend(p.service.iter().cloned());
                    principals |= p.anyone || !p.aws.is_empty() || !p.federated.is_empty();
                    let at = Some(format!("{}/Principal", s.pointer));
                    if p.anyone {
                        findings.push(finding(
                            "trust-anyone",
                            Severity::Critical,
                            "Anyone may assume this role".into(),
                            "The trust policy names the principal \"*\": any AWS account in the world can assume the role (conditions only narrow it by what they check).".into(),
                            "Name the service or account that needs the role.".into(),
                            Some("trust policy"),
                            at.clone(),
                        ));
                    }
                    let own = account_of(&role.arn);
                    for other in p.aws.iter().filter(|a| *a != "*") {
                        let other_account = if other.chars().all(|c| c.is_ascii_digit()) { Some(other.as_str()) } else { account_of(other) };
                        if other_account.is_some() && other_account != own && !s.has_condition("sts:ExternalId") && !s.has_condition("aws:MultiFactorAuthPresent") {
                            findings.push(finding(
                                "trust-cross-account",
                                Severity::High,
                                format!("Account {} may assume it without an ExternalId or MFA", other_account.unwrap_or_default()),
                                "Another account can assume this role, and nothing in the trust policy proves who is asking (the confused-deputy problem).".into(),
                                "Add a condition on sts:ExternalId (for a third party) or aws:MultiFactorAuthPresent (for people).".into(),
                                Some("trust policy"),
                                at.clone(),
                            ));
                        }
                    }
                }
            }
        }
    }

    let kind = RoleKind::from_trust(&services, principals);

    // Permissions, statement by statement, and the managed policies by name.
    let mut permissions: Vec<Statement> = Vec::new();
    for p in &role.policies {
        if p.kind == PolicyKind::AwsManaged && (p.name.ends_with("FullAccess") || p.name == "AdministratorAccess") {
            let sagemaker_on_lambda = p.name == "AmazonSageMakerFullAccess" && lambda_trusted;
            let severity = if sagemaker_on_lambda || p.name == "AdministratorAccess" { Severity::Critical } else { Severity::High };
            findings.push(finding(
                "managed-full-access",
                severity,
                format!("{} attached{}", p.name, if sagemaker_on_lambda { " to a role Lambda assumes" } else { "" }),
                if sagemaker_on_lambda {
                    "A Lambda that only needs to invoke one endpoint can create notebooks, training and processing jobs, pass roles to them, and read and write their buckets.".into()
                } else {
                    format!("{} grants every action of its service(s), far beyond one workload's needs.", p.name)
                },
                format!("Replace it with a scoped inline policy built from the deployment's own ARNs. {}", kind.least_privilege()),
                Some(&p.name),
                None,
            ));
        }
        match policy::parse(&p.document) {
            Ok(statements) => {
                findings.extend(document_findings(&statements, Some(&p.name), kind));
                permissions.extend(statements);
            }
            Err(e) => unreadable.push((p.name.clone(), e.to_string())),
        }
    }
    let boundary: Option<Vec<Statement>> = role.boundary.as_ref().and_then(|b| match policy::parse(&b.document) {
        Ok(s) => Some(s),
        Err(e) => {
            unreadable.push((b.name.clone(), e.to_string()));
            None
        }
    });
    let can = |action: &str, resource: &str| allows(&permissions, boundary.as_deref(), action, resource);

    // Combinations over the role as a whole, on concrete resources.
    let own = account_of(&role.arn).unwrap_or("123456789012");
    let any_role = format!("arn:aws:iam::{own}:role/probe-administrator");
    let creates: Vec<&str> = PASSROLE_ESCALATION
        .iter()
        .copied()
        .filter(|a| {
            let kind = if a.ends_with("TrainingJob") { "training-job" } else if a.ends_with("NotebookInstance") { "notebook-instance" } else { "processing-job" };
            can(a, &format!("arn:aws:sagemaker:us-east-1:{own}:{kind}/probe"))
        })
        .collect();
    let mut escalates = false;
    if !creates.is_empty() {
        if may_pass(&permissions, boundary.as_deref(), "sagemaker.amazonaws.com", &any_role) {
            escalates = true;
            findings.push(finding(
                "escalation-passrole",
                Severity::Critical,
                format!("iam:PassRole on any role with {}", creates.join(", ")),
                "The role can start a job or notebook that runs as any other role it passes (an administrator's included): it gets that role's permissions.".into(),
                "Restrict iam:PassRole to the one execution role the jobs need, with iam:PassedToService sagemaker.amazonaws.com; or drop the create actions.".into(),
                None,
                None,
            ));
        } else {
            // PassRole on some roles only: a finding when they are not just itself.
            let mut others: Vec<String> = permissions
                .iter()
                .filter(|s| s.effect == Effect::Allow && !s.action.negated && s.action.covers("iam:PassRole", true) && passes_to(s, "sagemaker.amazonaws.com"))
                .flat_map(|s| s.resource.values.iter().cloned())
                .filter(|r| *r != role.arn && may_pass(&permissions, boundary.as_deref(), "sagemaker.amazonaws.com", r))
                .collect();
            others.sort();
            others.dedup();
            if !others.is_empty() {
                findings.push(finding(
                    "escalation-passrole",
                    Severity::Medium,
                    format!("iam:PassRole on {} with {}", others.join(", "), creates.join(", ")),
                    "The role can start jobs that run as the roles it may pass: it has their permissions too.".into(),
                    "Make sure those roles have no more than this one, or pass only this role.".into(),
                    None,
                    None,
                ));
            }
        }
    }
    let function = format!("arn:aws:lambda:us-east-1:{own}:function:probe");
    if can("lambda:CreateFunction", &function) && can("lambda:InvokeFunction", &function) {
        findings.push(finding(
            "escalation-lambda",
            Severity::High,
            "lambda:CreateFunction with lambda:InvokeFunction".into(),
            "The role can create a function with code of its choosing and run it (as any role it may pass).".into(),
            "Keep only lambda:InvokeFunction on the functions it calls.".into(),
            None,
            None,
        ));
    }
    let self_modify: Vec<&str> = SELF_MODIFY.iter().copied().filter(|a| can(a, &role.arn)).collect();
    if !self_modify.is_empty() {
        findings.push(finding(
            "self-modify",
            Severity::Critical,
            format!("The role can change its own permissions ({})", self_modify.join(", ")),
            "Whatever its policies say today, it can grant itself more.".into(),
            "Remove IAM write actions from the role, or scope them away from its own ARN.".into(),
            None,
            None,
        ));
    }

    // Use.
    let day = 86_400;
    match (role.last_used, role.created) {
        (Some(last), _) if now - last > i64::from(unused_days) * day => findings.push(finding(
            "unused",
            Severity::Medium,
            format!("Not used for {} days", (now - last) / day),
            format!("Unused for more than {unused_days} days: its permissions are risk without purpose."),
            "Delete the role, or confirm who still needs it.".into(),
            None,
            None,
        )),
        (None, Some(created)) if now - created > i64::from(unused_days) * day => findings.push(finding(
            "never-used",
            Severity::Medium,
            format!("Never used since it was created {} days ago", (now - created) / day),
            "Nothing has assumed this role since it was created.".into(),
            "Delete the role if nothing needs it.".into(),
            None,
            None,
        )),
        _ => {}
    }

    // The same finding from two statements of one policy is listed once.
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.rule.clone(), f.title.clone(), f.policy.clone())));
    findings.sort_by(|a, b| b.severity.cmp(&a.severity));

    // The score: the role's reach, then who may use it.
    let allowed_actions: Vec<String> =
        permissions.iter().filter(|s| s.effect == Effect::Allow && !s.action.negated).flat_map(|s| s.action.values.iter().cloned()).collect();
    let negated_allow = permissions.iter().any(|s| s.effect == Effect::Allow && s.action.negated);
    let reach = rank::tier(&can, escalates, &Probes::new(own), &allowed_actions, negated_allow);
    let has = |rule: &str| findings.iter().any(|f| f.rule == rule);
    let exposure = if has("trust-anyone") { 9 } else if has("trust-cross-account") { 5 } else { 0 }
        + if has("unused") || has("never-used") { 2 } else { 0 };
    let score = reach.score + exposure.min(9);
    trusted_by.sort();
    trusted_by.dedup();
    RoleReport {
        name: role.name.clone(),
        arn: role.arn.clone(),
        score,
        reach: reach.label.to_string(),
        kind,
        findings,
        trusted_by,
        unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(doc: &str) -> Vec<String> {
        analyze_document(doc).unwrap().into_iter().map(|f| f.rule).collect()
    }

    /// The seeds' scoped policy: one endpoint, nothing else.
    const SEEDS_SCOPED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:InvokeEndpoint","Resource":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs"}]}"#;
    const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    #[test]
    fn the_seeds_scoped_policy_is_clean() {
        assert!(rules(SEEDS_SCOPED).is_empty());
        let role = RoleInput {
            name: "lambda-role".into(),
            arn: "arn:aws:iam::123456789012:role/lambda-role".into(),
            created: Some(0),
            last_used: Some(1000),
            trust: Some(LAMBDA_TRUST.into()),
            policies: vec![PolicyInput { name: "scoped".into(), arn: None, kind: PolicyKind::Inline, document: SEEDS_SCOPED.into() }],
            boundary: None,
        };
        let r = analyze_role(&role, 2000, 90);
        assert!(r.findings.is_empty(), "{:#?}", r.findings);
        assert_eq!(r.score, rank::SCOPED_WRITES.score, "it may invoke one endpoint: {}", r.reach);
        assert_eq!(r.kind, RoleKind::Lambda);
        assert_eq!(r.trusted_by, ["lambda.amazonaws.com"]);
    }

    #[test]
    fn wildcards_fire_and_scoped_statements_do_not() {
        assert_eq!(rules(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#), ["action-wildcard"]);
        let r = rules(r#"{"Statement":[{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"}]}"#);
        assert_eq!(r, ["service-wildcard"]);
        let r = rules(r#"{"Statement":[{"Effect":"Allow","Action":["sagemaker:InvokeEndpoint","sagemaker:ListEndpoints"],"Resource":"*"}]}"#);
        assert_eq!(r, ["resource-wildcard"]);
        // List actions only take "*": not a finding.
        assert!(rules(r#"{"Statement":[{"Effect":"Allow","Action":"sagemaker:ListEndpoints","Resource":"*"}]}"#).is_empty());
        assert!(rules(r#"{"Statement":[{"Effect":"Allow","Action":["iam:ListRoles","lambda:ListFunctions"],"Resource":"*"}]}"#).is_empty());
        // Deny statements are never findings.
        assert!(rules(r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#).is_empty());
        let f = analyze_document(r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/x/*"},{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"}]}"#).unwrap();
        assert_eq!(f[0].pointer.as_deref(), Some("/Statement/1/Action"));
    }

    #[test]
    fn not_action_and_not_resource_fire_on_allow_only() {
        assert_eq!(rules(r#"{"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}"#), ["allow-not-action"]);
        assert_eq!(rules(r#"{"Statement":{"Effect":"Allow","Action":"s3:ListBucket","NotResource":"arn:aws:s3:::secret"}}"#), ["allow-not-resource"]);
        assert!(rules(r#"{"Statement":{"Effect":"Deny","NotAction":"iam:*","NotResource":"*"}}"#).is_empty());
    }

    #[test]
    fn credentials_and_resource_exposure_by_name() {
        let r = rules(r#"{"Statement":{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ec2:CreateNetworkInterfacePermission"],"Resource":"*"}}"#);
        assert!(r.contains(&"credentials-exposure".to_string()) && r.contains(&"resource-exposure".to_string()), "{r:?}");
        let r = rules(r#"{"Statement":{"Effect":"Allow","Action":"s3:PutBucketPolicy","Resource":"arn:aws:s3:::mine"}}"#);
        assert!(r.is_empty(), "scoped to one bucket: {r:?}");
    }

    #[test]
    fn passrole_needs_a_resource_and_a_service_condition() {
        let r = rules(r#"{"Statement":{"Effect":"Allow","Action":"iam:PassRole","Resource":"*"}}"#);
        assert_eq!(r, ["resource-wildcard", "passrole-wildcard", "passrole-unconditioned"]);
        let r = rules(r#"{"Statement":{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::1:role/exec"}}"#);
        assert_eq!(r, ["passrole-unconditioned"]);
        assert!(rules(r#"{"Statement":{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::1:role/exec","Condition":{"StringEquals":{"iam:PassedToService":"sagemaker.amazonaws.com"}}}}"#).is_empty());
    }

    #[test]
    fn exposure_actions_on_every_resource() {
        let r = rules(r#"{"Statement":{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","s3:GetObject"],"Resource":"*"}}"#);
        assert_eq!(r.iter().filter(|r| *r == "unscoped-exposure").count(), 2, "{r:?}");
        assert!(rules(r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/data/*"}}"#).is_empty());
    }

    fn role_with(policies: Vec<PolicyInput>, trust: &str) -> RoleInput {
        RoleInput {
            name: "r".into(),
            arn: "arn:aws:iam::123456789012:role/r".into(),
            created: Some(0),
            last_used: Some(0),
            trust: Some(trust.into()),
            policies,
            boundary: None,
        }
    }

    fn inline(doc: &str) -> PolicyInput {
        PolicyInput { name: "p".into(), arn: None, kind: PolicyKind::Inline, document: doc.into() }
    }

    #[test]
    fn combinations_are_judged_across_policies_and_the_boundary_limits_them() {
        let pass = inline(r#"{"Statement":{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::123456789012:role/exec","Condition":{"StringEquals":{"iam:PassedToService":"sagemaker.amazonaws.com"}}}}"#);
        let train = PolicyInput { name: "train".into(), ..inline(r#"{"Statement":{"Effect":"Allow","Action":"sagemaker:CreateTrainingJob","Resource":"*"}}"#) };
        let mut role = role_with(vec![pass.clone(), train.clone()], LAMBDA_TRUST);
        let r = analyze_role(&role, 0, 90);
        assert!(r.findings.iter().any(|f| f.rule == "escalation-passrole"), "{:#?}", r.findings);
        // A boundary without CreateTrainingJob takes the combination away.
        role.boundary = Some(PolicyInput {
            name: "boundary".into(),
            arn: None,
            kind: PolicyKind::Boundary,
            document: r#"{"Statement":{"Effect":"Allow","Action":["iam:PassRole","sagemaker:Describe*"],"Resource":"*"}}"#.into(),
        });
        assert!(!analyze_role(&role, 0, 90).findings.iter().any(|f| f.rule == "escalation-passrole"));
        let lambda = inline(r#"{"Statement":{"Effect":"Allow","Action":["lambda:CreateFunction","lambda:InvokeFunction"],"Resource":"*"}}"#);
        assert!(analyze_role(&role_with(vec![lambda], LAMBDA_TRUST), 0, 90).findings.iter().any(|f| f.rule == "escalation-lambda"));
        let own = inline(r#"{"Statement":{"Effect":"Allow","Action":"iam:PutRolePolicy","Resource":"arn:aws:iam::123456789012:role/r"}}"#);
        assert!(analyze_role(&role_with(vec![own], LAMBDA_TRUST), 0, 90).findings.iter().any(|f| f.rule == "self-modify"));
        let other = inline(r#"{"Statement":{"Effect":"Allow","Action":"iam:PutRolePolicy","Resource":"arn:aws:iam::123456789012:role/someone-else"}}"#);
        assert!(!analyze_role(&role_with(vec![other], LAMBDA_TRUST), 0, 90).findings.iter().any(|f| f.rule == "self-modify"));
        // An explicit Deny wins.
        let denied = inline(r#"{"Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"},{"Effect":"Deny","Action":"iam:PutRolePolicy","Resource":"*"},{"Effect":"Deny","Action":"iam:Attach*","Resource":"*"},{"Effect":"Deny","Action":["iam:UpdateAssumeRolePolicy","iam:DeleteRolePermissionsBoundary","iam:CreatePolicyVersion","iam:SetDefaultPolicyVersion"],"Resource":"*"}]}"#);
        assert!(!analyze_role(&role_with(vec![denied], LAMBDA_TRUST), 0, 90).findings.iter().any(|f| f.rule == "self-modify"));
    }

    #[test]
    fn managed_full_access_is_critical_on_a_lambda_role() {
        let full = PolicyInput {
            name: "AmazonSageMakerFullAccess".into(),
            arn: Some("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".into()),
            kind: PolicyKind::AwsManaged,
            document: r#"{"Statement":[{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"}]}"#.into(),
        };
        let r = analyze_role(&role_with(vec![full.clone()], LAMBDA_TRUST), 0, 90);
        let f = r.findings.iter().find(|f| f.rule == "managed-full-access").unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.title.contains("Lambda"));
        let sm_trust = LAMBDA_TRUST.replace("lambda.amazonaws.com", "sagemaker.amazonaws.com");
        let r = analyze_role(&role_with(vec![full], &sm_trust), 0, 90);
        assert_eq!(r.findings.iter().find(|f| f.rule == "managed-full-access").unwrap().severity, Severity::High);
        assert!(r.score > 0 && r.score <= 100);
    }

    /// AWS's own AmazonSageMakerFullAccess (version v29, as moto serves it
    /// with MOTO_IAM_LOAD_MANAGED_POLICIES=true).
    const SAGEMAKER_FULL_ACCESS: &str = include_str!("fixtures/AmazonSageMakerFullAccess.json");

    #[test]
    fn the_real_sagemaker_full_access_document() {
        let found = rules(SAGEMAKER_FULL_ACCESS);
        for rule in ["service-wildcard", "allow-not-resource", "resource-wildcard"] {
            assert!(found.iter().any(|r| r == rule), "{rule} missing from {found:?}");
        }
        let full = PolicyInput {
            name: "AmazonSageMakerFullAccess".into(),
            arn: Some("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".into()),
            kind: PolicyKind::AwsManaged,
            document: SAGEMAKER_FULL_ACCESS.into(),
        };
        let r = analyze_role(&role_with(vec![full], LAMBDA_TRUST), 0, 90);
        assert_eq!(r.findings[0].severity, Severity::Critical);
        for rule in ["managed-full-access", "escalation-passrole"] {
            assert!(r.findings.iter().any(|f| f.rule == rule), "{rule} missing: {:#?}", r.findings);
        }
        // Version 29 lets it pass any role to SageMaker (AllowPassRoleToSageMaker
        // on arn:aws:iam::*:role/*): it can act as an administrator's role.
        assert_eq!((r.score, r.reach.as_str()), (rank::IAM_CONTROL.score, rank::IAM_CONTROL.label));
        assert_eq!(r.findings.iter().filter(|f| f.title == "Service wildcard sagemaker:*").count(), 1, "listed once: {:#?}", r.findings);
        assert!(r.findings.iter().all(|f| !f.fix.contains("InvokeEndpoint") || f.rule != "service-wildcard" || r.kind == RoleKind::Lambda));
    }

    /// The hand-made account's roles, as people set them up: ranked by what
    /// each can do, ties only between equals.
    #[test]
    fn roles_rank_by_what_they_can_do() {
        let day = 86_400;
        let sm_trust = LAMBDA_TRUST.replace("lambda.amazonaws.com", "sagemaker.amazonaws.com");
        let people = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}}"#;
        let partner = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}}"#;
        let role = |name: &str, docs: &[&str], trust: &str| RoleInput {
            name: name.into(),
            arn: format!("arn:aws:iam::123456789012:role/{name}"),
            policies: docs.iter().map(|d| inline(d)).collect(),
            last_used: Some(399 * day),
            ..role_with(vec![], trust)
        };
        let full = PolicyInput {
            name: "AmazonSageMakerFullAccess".into(),
            arn: Some("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".into()),
            kind: PolicyKind::AwsManaged,
            document: SAGEMAKER_FULL_ACCESS.into(),
        };
        let mut unused_reader = role("old-reader", &[r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::flowers/data/*"}}"#], &sm_trust);
        unused_reader.last_used = None;
        let mut bounded = role("bounded-admin", &[r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#], &sm_trust);
        bounded.boundary = Some(PolicyInput {
            name: "describe-only".into(),
            arn: None,
            kind: PolicyKind::Boundary,
            document: r#"{"Statement":{"Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:CreateTrainingJob"],"Resource":"*"}}"#.into(),
        });
        let roles = vec![
            role("ops-admin", &[r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#], people),
            RoleInput { policies: vec![full], ..role("notebook-exec", &[], &sm_trust) },
            role("power-user", &[r#"{"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}"#], people),
            role("partner-read", &[r#"{"Statement":{"Effect":"Allow","Action":["s3:Get*","s3:List*","ec2:Describe*","sagemaker:Describe*","sagemaker:List*"],"Resource":"*"}}"#], partner),
            role("sagemaker-ops", &[r#"{"Statement":{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"}}"#], people),
            role("flowers-invoke", &[SEEDS_SCOPED], LAMBDA_TRUST),
            bounded,
            unused_reader,
        ];
        let reports: Vec<RoleReport> = roles.iter().map(|r| analyze_role(r, 400 * day, 90)).collect();
        let scores: Vec<(&str, u32)> = reports.iter().map(|r| (r.name.as_str(), r.score)).collect();
        assert_eq!(
            scores,
            [("ops-admin", 90), ("notebook-exec", 80), ("power-user", 70), ("partner-read", 60), ("sagemaker-ops", 40), ("flowers-invoke", 20), ("bounded-admin", 20), ("old-reader", 12)],
            "{:#?}",
            reports.iter().map(|r| (&r.name, &r.reach)).collect::<Vec<_>>()
        );
        // The boundary leaves no PassRole: no escalation finding.
        assert!(!reports[6].findings.iter().any(|f| f.rule.starts_with("escalation")), "{:#?}", reports[6].findings);
        // Advice fits the role: an execution role is not told about InvokeEndpoint.
        let exec = &reports[1];
        assert_eq!(exec.kind, RoleKind::SageMaker);
        let wildcard = exec.findings.iter().find(|f| f.rule == "service-wildcard").unwrap();
        assert!(wildcard.fix.contains("s3:PutObject") && !wildcard.fix.contains("InvokeEndpoint"), "{}", wildcard.fix);
        let managed = exec.findings.iter().find(|f| f.rule == "managed-full-access").unwrap();
        assert!(!managed.fix.contains("InvokeEndpoint"), "{}", managed.fix);
        assert_eq!(reports[3].kind, RoleKind::Principals);
    }

    #[test]
    fn passing_only_itself_is_not_an_escalation() {
        let sm_trust = LAMBDA_TRUST.replace("lambda.amazonaws.com", "sagemaker.amazonaws.com");
        let doc = r#"{"Statement":[{"Effect":"Allow","Action":"sagemaker:CreateTrainingJob","Resource":"*"},{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::123456789012:role/r","Condition":{"StringEquals":{"iam:PassedToService":"sagemaker.amazonaws.com"}}}]}"#;
        let r = analyze_role(&role_with(vec![inline(doc)], &sm_trust), 0, 90);
        assert!(!r.findings.iter().any(|f| f.rule == "escalation-passrole"), "{:#?}", r.findings);
        // Passing roles to another service only does not reach SageMaker.
        let glue = r#"{"Statement":[{"Effect":"Allow","Action":"sagemaker:CreateTrainingJob","Resource":"*"},{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"glue.amazonaws.com"}}}]}"#;
        let r = analyze_role(&role_with(vec![inline(glue)], &sm_trust), 0, 90);
        assert!(!r.findings.iter().any(|f| f.rule == "escalation-passrole"), "{:#?}", r.findings);
        assert_ne!(r.score, rank::IAM_CONTROL.score);
    }

    #[test]
    fn trust_rules() {
        let anyone = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#;
        assert!(analyze_role(&role_with(vec![], anyone), 0, 90).findings.iter().any(|f| f.rule == "trust-anyone" && f.severity == Severity::Critical));
        let other = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}}"#;
        assert!(analyze_role(&role_with(vec![], other), 0, 90).findings.iter().any(|f| f.rule == "trust-cross-account"));
        let with_id = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"999988887777"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"k"}}}}"#;
        assert!(analyze_role(&role_with(vec![], with_id), 0, 90).findings.is_empty());
        let same = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}}"#;
        assert!(analyze_role(&role_with(vec![], same), 0, 90).findings.is_empty());
    }

    #[test]
    fn unused_and_never_used_roles() {
        let day = 86_400;
        let mut role = role_with(vec![], LAMBDA_TRUST);
        role.last_used = Some(0);
        assert!(analyze_role(&role, 91 * day, 90).findings.iter().any(|f| f.rule == "unused"));
        assert!(analyze_role(&role, 89 * day, 90).findings.is_empty());
        role.last_used = None;
        assert!(analyze_role(&role, 91 * day, 90).findings.iter().any(|f| f.rule == "never-used"));
        assert!(analyze_role(&role, 10 * day, 90).findings.is_empty(), "a new role is not flagged");
    }
}
