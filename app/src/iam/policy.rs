//! IAM policy documents, normalised: a statement or a list of them, strings
//! or lists of strings, Action or NotAction, Resource or NotResource, the
//! principal's forms. Pure, so the browser's live editor uses it too.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// Action or NotAction (Resource or NotResource): the list, and whether it is negated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub negated: bool,
    pub values: Vec<String>,
}

impl Matcher {
    fn any() -> Matcher {
        Matcher { negated: false, values: vec!["*".into()] }
    }

    /// Whether `value` is covered (IAM's glob: `*` any run, `?` one
    /// character; actions compare without case).
    pub fn covers(&self, value: &str, ignore_case: bool) -> bool {
        let hit = self.values.iter().any(|p| glob(p, value, ignore_case));
        hit != self.negated
    }
}

/// The principal of a trust policy statement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// `"Principal": "*"` or `{"AWS": "*"}`.
    pub anyone: bool,
    pub aws: Vec<String>,
    pub service: Vec<String>,
    pub federated: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Its place in the document's Statement list (0 when it was one object).
    pub index: usize,
    /// JSON pointer of the statement: `/Statement/2` or `/Statement`.
    pub pointer: String,
    pub sid: Option<String>,
    pub effect: Effect,
    pub action: Matcher,
    pub resource: Matcher,
    pub principal: Option<Principal>,
    /// The Condition block as written (operator → key → values).
    pub condition: Value,
}

impl Statement {
    /// Condition keys present, lower-cased (`iam:passedtoservice`).
    pub fn condition_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Value::Object(ops) = &self.condition {
            for block in ops.values() {
                if let Value::Object(kv) = block {
                    keys.extend(kv.keys().map(|k| k.to_ascii_lowercase()));
                }
            }
        }
        keys
    }

    pub fn has_condition(&self, key: &str) -> bool {
        self.condition_keys().iter().any(|k| k == &key.to_ascii_lowercase())
    }
}

/// Why a document could not be read, located to the line when it is JSON's fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

fn shape(message: impl Into<String>) -> PolicyError {
    PolicyError { line: None, column: None, message: message.into() }
}

/// Parses a document from text (the editor's, a file's).
pub fn parse(text: &str) -> Result<Vec<Statement>, PolicyError> {
    let value: Value = serde_json::from_str(text).map_err(|e| PolicyError {
        line: Some(e.line()),
        column: Some(e.column()),
        message: e.to_string(),
    })?;
    statements(&value)
}

/// Reads a document already parsed (authorization details carry them as JSON
/// objects, or as URL-encoded strings: pass those through [`parse`]).
pub fn statements(doc: &Value) -> Result<Vec<Statement>, PolicyError> {
    let Value::Object(map) = doc else { return Err(shape("a policy document is a JSON object")) };
    let list = match map.get("Statement") {
        Some(Value::Array(items)) => items.iter().enumerate().map(|(i, s)| (i, format!("/Statement/{i}"), s)).collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![(0, "/Statement".to_string(), one)],
        Some(_) => return Err(shape("Statement must be an object or a list of objects")),
        None => return Err(shape("the document has no Statement")),
    };
    list.into_iter().map(|(index, pointer, s)| statement(index, pointer, s)).collect()
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| shape(format!("every {what} must be a string"))))
            .collect(),
        _ => Err(shape(format!("{what} must be a string or a list of strings"))),
    }
}

fn matcher(s: &serde_json::Map<String, Value>, key: &str, not_key: &str, pointer: &str) -> Result<Option<Matcher>, PolicyError> {
    match (s.get(key), s.get(not_key)) {
        (Some(_), Some(_)) => Err(shape(format!("{pointer} has both {key} and {not_key}"))),
        (Some(v), None) => Ok(Some(Matcher { negated: false, values: strings(v, key)? })),
        (None, Some(v)) => Ok(Some(Matcher { negated: true, values: strings(v, not_key)? })),
        (None, None) => Ok(None),
    }
}

fn principal(v: &Value) -> Result<Principal, PolicyError> {
    let mut p = Principal::default();
    match v {
        Value::String(s) if s == "*" => p.anyone = true,
        Value::Object(m) => {
            for (kind, who) in m {
                let list = strings(who, "principal")?;
                match kind.as_str() {
                    "AWS" => {
                        p.anyone |= list.iter().any(|a| a == "*");
                        p.aws.extend(list);
                    }
                    "Service" => p.service.extend(list),
                    "Federated" => p.federated.extend(list),
                    "CanonicalUser" => p.aws.extend(list),
                    other => return Err(shape(format!("unknown principal type {other:?}"))),
                }
            }
        }
        _ => return Err(shape("Principal must be \"*\" or an object")),
    }
    Ok(p)
}

fn statement(index: usize, pointer: String, s: &Value) -> Result<Statement, PolicyError> {
    let Value::Object(s) = s else { return Err(shape(format!("{pointer} is not an object"))) };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(shape(format!("{pointer}: Effect must be Allow or Deny, not {other:?}"))),
        None => return Err(shape(format!("{pointer} has no Effect"))),
    };
    let action = matcher(s, "Action", "NotAction", &pointer)?.ok_or_else(|| shape(format!("{pointer} has no Action or NotAction")))?;
    // Trust policies have no Resource: they apply to the role itself.
    let resource = matcher(s, "Resource", "NotResource", &pointer)?.unwrap_or_else(Matcher::any);
    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), _) => Some(principal(p)?),
        (None, Some(_)) => Some(Principal { anyone: true, ..Default::default() }),
        (None, None) => None,
    };
    Ok(Statement {
        index,
        pointer,
        sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
        effect,
        action,
        resource,
        principal,
        condition: s.get("Condition").cloned().unwrap_or(Value::Null),
    })
}

/// IAM's wildcard match: `*` any run of characters, `?` exactly one.
pub fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let norm = |s: &str| if ignore_case { s.to_ascii_lowercase() } else { s.to_string() };
    let (p, v): (Vec<char>, Vec<char>) = (norm(pattern).chars().collect(), norm(value).chars().collect());
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_or_many_strings_or_lists() {
        let one = parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].pointer, "/Statement");
        assert_eq!(one[0].action.values, ["s3:GetObject"]);
        let many = parse(r#"{"Statement":[{"Effect":"Deny","NotAction":["iam:*","sts:*"],"NotResource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#).unwrap();
        assert_eq!(many.len(), 2);
        assert!(many[0].action.negated && many[0].resource.negated);
        assert_eq!(many[1].pointer, "/Statement/1");
    }

    #[test]
    fn json_errors_are_located_and_shape_errors_named() {
        let e = parse("{\n  \"Statement\": [\n    {\"Effect\": \"Allow\",}\n  ]\n}").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(parse(r#"{"Statement":[{"Effect":"Maybe","Action":"*"}]}"#).unwrap_err().message.contains("Allow or Deny"));
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#).unwrap_err().message.contains("no Action"));
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"x"}]}"#).unwrap_err().message.contains("both"));
        assert!(parse(r#"[]"#).is_err());
    }

    #[test]
    fn principals_in_every_form() {
        let s = parse(r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}}"#).unwrap();
        assert_eq!(s[0].principal.as_ref().unwrap().service, ["lambda.amazonaws.com"]);
        let s = parse(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#).unwrap();
        assert!(s[0].principal.as_ref().unwrap().anyone);
        let s = parse(r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","*"]},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}}"#).unwrap();
        assert!(s[0].principal.as_ref().unwrap().anyone);
        assert!(s[0].has_condition("sts:externalid"));
    }

    #[test]
    fn globs_match_like_iam() {
        assert!(glob("sagemaker:*", "sagemaker:InvokeEndpoint", true));
        assert!(glob("sagemaker:Invoke*", "SageMaker:invokeendpoint", true));
        assert!(!glob("sagemaker:Invoke*", "sagemaker:CreateEndpoint", true));
        assert!(glob("s3:Get?bject", "s3:GetObject", true));
        assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y", false));
        assert!(!glob("arn:aws:s3:::b/*", "arn:aws:s3:::c/x", false));
        assert!(glob("*", "", false));
        assert!(glob("a*b*c", "aXXbYYc", false) && !glob("a*b*c", "aXXbYY", false));
    }
}
