//! The recorded price table: what Sagedeck prices with when the AWS Pricing
//! API cannot be asked (no AWS account, no permission, no network).
//!
//! SageMaker's published us-east-1 on-demand rates for the general-purpose,
//! compute, memory and GPU families in the notebook table
//! (`notebooks::pricing`, recorded 2024-06-01) are the same for notebooks,
//! training and hosting; the exceptions are written here: burstable (t2/t3)
//! types cannot train, and ml.t2.medium hosts at $0.056. Other regions price
//! differently, so the table answers for us-east-1 only and a page for
//! another region says it has no price rather than guess.

use super::Usage;

pub const RECORDED_REGION: &str = "us-east-1";
pub const RECORDED_ON: &str = "2024-06-01";

/// Types a local run may be priced as that the notebook table lacks.
const EXTRA: &[(&str, f64)] = &[("ml.c5.9xlarge", 1.836)];

pub fn recorded(usage: Usage, instance_type: &str) -> Option<f64> {
    let burstable = instance_type.starts_with("ml.t2.") || instance_type.starts_with("ml.t3.");
    match usage {
        Usage::Training if burstable => None,
        Usage::Hosting if instance_type == "ml.t2.medium" => Some(0.056),
        _ => crate::notebooks::pricing::hourly_usd(instance_type)
            .or_else(|| EXTRA.iter().find(|(t, _)| *t == instance_type).map(|(_, p)| *p)),
    }
}

/// Where a price came from, as the page labels it.
pub fn recorded_label() -> String {
    format!("recorded table ({RECORDED_REGION}, {RECORDED_ON})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_prices_each_use_with_its_exceptions() {
        assert_eq!(recorded(Usage::Hosting, "ml.m5.large"), Some(0.115));
        assert_eq!(recorded(Usage::Training, "ml.m5.large"), Some(0.115));
        assert_eq!(recorded(Usage::Notebook, "ml.t2.medium"), Some(0.0464));
        assert_eq!(recorded(Usage::Hosting, "ml.t2.medium"), Some(0.056));
        assert_eq!(recorded(Usage::Training, "ml.t3.medium"), None, "burstable types do not train");
        assert_eq!(recorded(Usage::Training, "ml.c5.9xlarge"), Some(1.836));
        assert_eq!(recorded(Usage::Hosting, "ml.z9.mega"), None);
    }
}
