//! Estimated on-demand prices of SageMaker notebook instances.
//!
//! Source: the "On-Demand Pricing / Notebook Instances" table of
//! https://aws.amazon.com/sagemaker/pricing/, region us-east-1, as recorded
//! for Sagedeck on 2024-06-01. Prices differ by region and change over time;
//! the console labels every figure as an estimate. Types not listed show "—".

const HOURLY_USD: &[(&str, f64)] = &[
    ("ml.t2.medium", 0.0464),
    ("ml.t2.large", 0.0928),
    ("ml.t2.xlarge", 0.1856),
    ("ml.t3.medium", 0.05),
    ("ml.t3.large", 0.10),
    ("ml.t3.xlarge", 0.20),
    ("ml.t3.2xlarge", 0.399),
    ("ml.m5.large", 0.115),
    ("ml.m5.xlarge", 0.23),
    ("ml.m5.2xlarge", 0.461),
    ("ml.m5.4xlarge", 0.922),
    ("ml.m5.12xlarge", 2.765),
    ("ml.c5.large", 0.102),
    ("ml.c5.xlarge", 0.204),
    ("ml.c5.2xlarge", 0.408),
    ("ml.c5.4xlarge", 0.816),
    ("ml.r5.large", 0.151),
    ("ml.r5.xlarge", 0.302),
    ("ml.g4dn.xlarge", 0.7364),
    ("ml.g4dn.2xlarge", 1.0528),
    ("ml.g5.xlarge", 1.408),
    ("ml.g5.2xlarge", 1.515),
    ("ml.p3.2xlarge", 3.825),
    ("ml.p3.8xlarge", 14.688),
];

/// Hours in an average month (365 × 24 / 12), as AWS's calculator uses.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The notebook instance types the table prices, cheapest family first.
pub fn instance_types() -> impl Iterator<Item = &'static str> {
    HOURLY_USD.iter().map(|(name, _)| *name)
}

pub fn hourly_usd(instance_type: &str) -> Option<f64> {
    HOURLY_USD
        .iter()
        .find(|(name, _)| *name == instance_type)
        .map(|(_, price)| *price)
}

/// "$0.050/h" or "—" when the type is not in the table.
pub fn format_hourly(hourly: Option<f64>) -> String {
    match hourly {
        Some(p) => format!("${p:.3}/h"),
        None => "—".to_string(),
    }
}

/// "$36.50/month" for an instance left running all month.
pub fn format_monthly(hourly: Option<f64>) -> String {
    match hourly {
        Some(p) => format!("${:.2}/month", p * HOURS_PER_MONTH),
        None => "—".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_have_prices() {
        assert_eq!(hourly_usd("ml.t3.medium"), Some(0.05));
        assert_eq!(hourly_usd("ml.m5.xlarge"), Some(0.23));
    }

    #[test]
    fn unknown_types_have_none() {
        assert_eq!(hourly_usd("ml.z9.mega"), None);
        assert_eq!(format_hourly(None), "—");
    }

    #[test]
    fn formats() {
        assert_eq!(format_hourly(Some(0.05)), "$0.050/h");
        assert_eq!(format_monthly(Some(0.05)), "$36.50/month");
    }

    #[test]
    fn table_has_no_duplicates_and_positive_prices() {
        for (i, (a, p)) in HOURLY_USD.iter().enumerate() {
            assert!(*p > 0.0, "{a}");
            assert!(a.starts_with("ml."), "{a}");
            assert!(HOURLY_USD[i + 1..].iter().all(|(b, _)| a != b), "{a} twice");
        }
    }
}
