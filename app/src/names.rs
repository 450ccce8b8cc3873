//! AWS's rules for the names and addresses a user types, in one place.
//!
//! A name is checked once, where it enters, and then travels as its own type:
//! a server function takes an [`EndpointName`], not a `String`, so serde
//! refuses a bad one before the function's body runs (400, with the rule in
//! the message), and the services behind it never check again. Forms check
//! the same rule with [`EndpointName::parse`] before they send.

use crate::ApiError;
use serde::{Deserialize, Serialize};

/// A name type: a `String` that passed `$rule`. Serialized as the plain
/// string (the wire format is unchanged); deserializing runs the rule.
macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $rule:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The name, if it follows the rule; the rule in the error otherwise.
            pub fn parse(name: &str) -> Result<Self, ApiError> {
                $rule(name).map(|n| Self(n.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ApiError;
            fn try_from(name: String) -> Result<Self, ApiError> {
                Self::parse(&name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        /// So the SDK's builders (`impl Into<String>`) take one as they are.
        impl From<&$name> for String {
            fn from(name: &$name) -> String {
                name.0.clone()
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_name!(
    /// A SageMaker endpoint's name (local endpoints follow the same rule).
    EndpointName,
    endpoint_rule
);
checked_name!(
    /// A production variant's name: SageMaker's rule for names.
    VariantName,
    variant_rule
);
checked_name!(
    /// A SageMaker training job's or hyperparameter tuning job's name.
    TrainingJobName,
    training_job_rule
);
checked_name!(
    /// A Lambda function's name (the short form, not an ARN).
    FunctionName,
    function_rule
);
checked_name!(
    /// A SageMaker notebook instance's name; surrounding spaces are dropped.
    NotebookName,
    notebook_rule
);
checked_name!(
    /// A notebook lifecycle configuration's name: the notebook rule.
    LifecycleConfigName,
    notebook_rule
);

/// SageMaker's rule for names (endpoints, variants, jobs, models): letters,
/// digits and single hyphens, up to 63 characters, starting and ending with a
/// letter or digit.
fn follows_sagemaker_rule(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn sagemaker_rule<'a>(name: &'a str, what: &str) -> Result<&'a str, ApiError> {
    if follows_sagemaker_rule(name) {
        Ok(name)
    } else {
        Err(ApiError::Invalid(format!(
            "{name:?} is not a valid {what}: use 1 to 63 letters, digits or hyphens, starting and ending with a letter or digit"
        )))
    }
}

fn endpoint_rule(name: &str) -> Result<&str, ApiError> {
    sagemaker_rule(name, "endpoint name")
}

fn variant_rule(name: &str) -> Result<&str, ApiError> {
    sagemaker_rule(name, "variant name")
}

fn training_job_rule(name: &str) -> Result<&str, ApiError> {
    sagemaker_rule(name, "SageMaker training job name")
}

/// Lambda's rule for function names (the short form).
fn function_rule(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::Invalid(format!("{name:?} is not a valid function name: use 1 to 64 letters, digits, hyphens or underscores")))
    }
}

/// SageMaker's rule for notebook instance names: 1-63 characters, letters,
/// digits and hyphens, starting and ending with a letter or digit.
fn notebook_rule(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    let bad = |why: &str| Err(ApiError::Invalid(format!("notebook name {name:?} {why}")));
    if name.is_empty() {
        return Err(ApiError::Invalid("a notebook name is required".into()));
    }
    if name.len() > 63 {
        return bad("is longer than 63 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return bad("may contain only letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("must start and end with a letter or digit");
    }
    Ok(name)
}

/// An IAM role's ARN, as SageMaker wants it: `arn:aws:iam::<12 digits>:role/<path and name>`
/// in any partition (aws, aws-cn, aws-us-gov, the isolated ones).
pub fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    partition.starts_with("aws") && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && resource.len() > 5 && resource.starts_with("role/")
}

/// `s3://bucket/key…` with a bucket name S3 accepts (3–63 lower-case letters,
/// digits, dots and hyphens, starting and ending with a letter or digit).
pub fn is_s3_uri(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("s3://") else { return false };
    let bucket = rest.split('/').next().unwrap_or_default();
    (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && bucket.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_follow_sagemaker() {
        for ok in ["a", "dog-breeds", "x1-2-3", &"a".repeat(63)] {
            assert_eq!(EndpointName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "-a", "a-", "a_b", "a b", "ä", &"a".repeat(64), "../x"] {
            assert_eq!(EndpointName::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn role_arns_and_s3_uris() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/service-role/X"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/X"));
        assert!(!is_role_arn("arn:aws:iam::12345678901:role/X"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/X"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/"));
        assert!(!is_role_arn("arn:aws:s3:::123456789012:role/X"));
        assert!(is_s3_uri("s3://my.bucket-1/a/b"));
        assert!(!is_s3_uri("s3://ab"));
        assert!(!is_s3_uri("https://my-bucket/a"));
        assert!(!is_s3_uri("s3://My-Bucket/a"));
    }

    #[test]
    fn function_names_follow_lambda() {
        assert!(FunctionName::parse("dog-breeds_invoke").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(FunctionName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_travels_as_a_plain_string_and_is_checked_when_read() {
        let name = EndpointName::parse("dog-breeds").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"dog-breeds\"");
        assert_eq!(serde_json::from_str::<EndpointName>("\"dog-breeds\"").unwrap(), name);
        let refused = serde_json::from_str::<EndpointName>("\"../etc\"").unwrap_err().to_string();
        assert!(refused.contains("is not a valid endpoint name"), "{refused}");
        // Each kind names itself in its error.
        assert!(TrainingJobName::parse("a_b").unwrap_err().message().contains("training job name"));
        assert!(VariantName::parse("a_b").unwrap_err().message().contains("variant name"));
        assert_eq!(NotebookName::parse(" my-notebook-1 ").unwrap().as_str(), "my-notebook-1");
    }

    #[test]
    fn notebook_names_follow_sagemaker() {
        assert_eq!(NotebookName::parse(" my-notebook-1 ").unwrap().as_str(), "my-notebook-1");
        assert!(NotebookName::parse("").is_err());
        assert!(NotebookName::parse("-leading").is_err());
        assert!(NotebookName::parse("trailing-").is_err());
        assert!(NotebookName::parse("under_score").is_err());
        assert!(NotebookName::parse("../etc/passwd").is_err());
        assert!(NotebookName::parse(&"a".repeat(64)).is_err());
        assert!(NotebookName::parse(&"a".repeat(63)).is_ok());
    }
}
