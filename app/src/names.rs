//! AWS's rules for the names and addresses a user types: checked here, in
//! one place, by the forms in the browser and again by the server functions.

use crate::ApiError;

/// SageMaker's rule for endpoint names: letters, digits and single hyphens,
/// up to 63 characters, starting and ending with a letter or digit.
pub fn validate_endpoint_name(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(name)
    } else {
        Err(ApiError::Invalid(format!(
            "{name:?} is not a valid endpoint name: use 1 to 63 letters, digits or hyphens, starting and ending with a letter or digit"
        )))
    }
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

/// Lambda's rule for function names (the short form).
pub fn validate_function_name(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::Invalid(format!("{name:?} is not a valid function name: use 1 to 64 letters, digits, hyphens or underscores")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_follow_sagemaker() {
        for ok in ["a", "dog-breeds", "x1-2-3", &"a".repeat(63)] {
            assert!(validate_endpoint_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a b", "ä", &"a".repeat(64), "../x"] {
            assert_eq!(validate_endpoint_name(bad).unwrap_err().status(), 400, "{bad}");
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
        assert!(validate_function_name("dog-breeds_invoke").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(validate_function_name(bad).is_err(), "{bad}");
        }
    }
}
