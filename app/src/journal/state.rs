//! A journaled state made readable. The journal keeps what a revert needs
//! (a scaling policy as JSON, a role's permissions as JSON whose inline
//! policies are JSON strings again); the table shows a one-line summary of
//! each and, on demand, a line diff of the documents pretty-printed.

use crate::scaling::ScalingPolicy;
use serde_json::Value;
use std::collections::BTreeMap;

/// What a stored before- or after-state holds.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    None,
    Scaling(ScalingPolicy),
    /// A role's managed policy ARNs and inline policy documents (IAM fixes).
    Permissions { attached: Vec<String>, inline: BTreeMap<String, Value> },
    Json(Value),
    Text(String),
}

impl State {
    pub fn parse(stored: &str) -> State {
        if stored == "null" || stored.is_empty() {
            return State::None;
        }
        if let Ok(p) = serde_json::from_str::<ScalingPolicy>(stored) {
            return State::Scaling(p);
        }
        let Ok(value) = serde_json::from_str::<Value>(stored) else { return State::Text(stored.to_string()) };
        if let (Some(attached), Some(inline)) = (value.get("attached").and_then(Value::as_array), value.get("inline").and_then(Value::as_object)) {
            return State::Permissions {
                attached: attached.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
                // Each inline document is a JSON string: parse it, or keep the words.
                inline: inline
                    .iter()
                    .map(|(name, doc)| {
                        let doc = doc.as_str().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_else(|| doc.clone());
                        (name.clone(), doc)
                    })
                    .collect(),
            };
        }
        match value {
            Value::String(s) => State::Text(s),
            Value::Number(_) | Value::Bool(_) => State::Text(value.to_string()),
            other => State::Json(other),
        }
    }

    /// One short line for the table row.
    pub fn summary(&self) -> String {
        match self {
            State::None => "none".into(),
            State::Scaling(p) => crate::scaling::summary(p),
            State::Permissions { attached, inline } => {
                let managed: Vec<&str> = attached.iter().map(|a| a.rsplit('/').next().unwrap_or(a)).collect();
                let inline: Vec<String> = inline.iter().map(|(name, doc)| format!("{name} ({})", statement_count(doc))).collect();
                let mut parts = Vec::new();
                if !managed.is_empty() {
                    parts.push(format!("managed: {}", managed.join(", ")));
                }
                if !inline.is_empty() {
                    parts.push(format!("inline: {}", inline.join(", ")));
                }
                if parts.is_empty() {
                    "no permissions".into()
                } else {
                    parts.join(" · ")
                }
            }
            State::Json(v) => clip(&v.to_string(), 80),
            State::Text(t) => clip(t, 80),
        }
    }

    /// The whole state, one fact per line, for a diff.
    pub fn document(&self) -> String {
        match self {
            State::None => String::new(),
            State::Scaling(p) => serde_json::to_string_pretty(p).unwrap_or_default(),
            State::Permissions { attached, inline } => {
                let mut out = String::new();
                for a in attached {
                    out.push_str(&format!("managed policy {a}\n"));
                }
                for (name, doc) in inline {
                    out.push_str(&format!("inline policy {name}:\n"));
                    for line in serde_json::to_string_pretty(doc).unwrap_or_default().lines() {
                        out.push_str(&format!("  {line}\n"));
                    }
                }
                out
            }
            State::Json(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            State::Text(t) => t.clone(),
        }
    }

    /// Whether a diff says more than the summary.
    pub fn is_document(&self) -> bool {
        matches!(self, State::Scaling(_) | State::Permissions { .. } | State::Json(_))
    }
}

fn statement_count(doc: &Value) -> String {
    match doc.get("Statement") {
        Some(Value::Array(a)) => format!("{} statement{}", a.len(), if a.len() == 1 { "" } else { "s" }),
        Some(_) => "1 statement".into(),
        None => "document".into(),
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// One line of a unified diff.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DiffLine {
    Same(String),
    Removed(String),
    Added(String),
}

/// The line diff of two stored states, when either is a document (a
/// policy): the server computes it, so the diff algorithm stays out of the
/// browser's bundle (it was 7 % of the wasm's code).
#[cfg(feature = "ssr")]
pub fn diff_of_stored(before: Option<&str>, after: Option<&str>) -> Option<Vec<DiffLine>> {
    let (before, after) = (before.map(State::parse), after.map(State::parse));
    let documents = [&before, &after].iter().any(|s| s.as_ref().is_some_and(State::is_document));
    documents.then(|| diff(before.as_ref().unwrap_or(&State::None), after.as_ref().unwrap_or(&State::None)))
}

/// The line diff of two states' documents, every line kept (policy
/// documents are short; context matters more than brevity).
#[cfg(feature = "ssr")]
pub fn diff(before: &State, after: &State) -> Vec<DiffLine> {
    use similar::{ChangeTag, TextDiff};
    let (a, b) = (before.document(), after.document());
    TextDiff::from_lines(&a, &b)
        .iter_all_changes()
        .map(|c| {
            let line = c.value().trim_end_matches('\n').to_string();
            match c.tag() {
                ChangeTag::Equal => DiffLine::Same(line),
                ChangeTag::Delete => DiffLine::Removed(line),
                ChangeTag::Insert => DiffLine::Added(line),
            }
        })
        .collect()
}

/// "+12 −30 lines".
pub fn diff_size(lines: &[DiffLine]) -> String {
    let added = lines.iter().filter(|l| matches!(l, DiffLine::Added(_))).count();
    let removed = lines.iter().filter(|l| matches!(l, DiffLine::Removed(_))).count();
    format!("+{added} −{removed} lines")
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    const FIX_BEFORE: &str = r#"{"attached":["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"],"inline":{}}"#;
    const FIX_AFTER: &str = r#"{"attached":[],"inline":{"invoke-one-endpoint":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sagemaker:InvokeEndpoint\",\"Resource\":\"arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs\"},{\"Effect\":\"Allow\",\"Action\":[\"logs:CreateLogStream\",\"logs:PutLogEvents\"],\"Resource\":\"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/dogs-invoke:*\"}]}"}}"#;

    #[test]
    fn an_iam_fix_reads_as_policies_not_escaped_json() {
        let (before, after) = (State::parse(FIX_BEFORE), State::parse(FIX_AFTER));
        assert_eq!(before.summary(), "managed: AmazonSageMakerFullAccess");
        assert_eq!(after.summary(), "inline: invoke-one-endpoint (2 statements)");
        assert!(!after.summary().contains('\\'));
        let doc = after.document();
        assert!(doc.starts_with("inline policy invoke-one-endpoint:\n  {\n"), "{doc}");
        assert!(doc.contains("\"Action\": \"sagemaker:InvokeEndpoint\""), "{doc}");
        assert!(!doc.contains("\\\""), "no escaped quotes: {doc}");
        let lines = diff(&before, &after);
        assert_eq!(lines[0], DiffLine::Removed("managed policy arn:aws:iam::aws:policy/AmazonSageMakerFullAccess".into()));
        assert!(lines.contains(&DiffLine::Added("        \"Action\": \"sagemaker:InvokeEndpoint\",".into())), "{lines:?}");
        assert_eq!(diff_size(&lines), format!("+{} −1 lines", lines.len() - 1));
    }

    #[test]
    fn a_scaling_edit_diffs_only_what_changed() {
        let p = ScalingPolicy::seeds_default();
        let before = State::parse(&serde_json::to_string(&p).unwrap());
        let after = State::parse(&serde_json::to_string(&ScalingPolicy { target_value: 40.0, ..p }).unwrap());
        assert!(before.summary().contains("target 25 invocations/instance/min"), "{}", before.summary());
        let lines = diff(&before, &after);
        let changed: Vec<&DiffLine> = lines.iter().filter(|l| !matches!(l, DiffLine::Same(_))).collect();
        assert_eq!(changed, [&DiffLine::Removed("  \"target_value\": 25.0,".into()), &DiffLine::Added("  \"target_value\": 40.0,".into())]);
    }

    #[test]
    fn words_stay_words_and_long_ones_are_clipped() {
        assert_eq!(State::parse("InService"), State::Text("InService".into()));
        assert_eq!(State::parse("null"), State::None);
        assert_eq!(State::parse("3").summary(), "3");
        assert!(!State::parse("3").is_document());
        let long = "x".repeat(200);
        assert_eq!(State::parse(&long).summary().chars().count(), 80);
        assert!(State::parse(r#"{"a":[1,2]}"#).is_document());
    }
}
