//! CloudWatch's GetMetricStatistics over a console window, for any
//! namespace: the SageMaker endpoints' charts (AWS/SageMaker) and the Lambda
//! functions' (AWS/Lambda) ask the same way.

use crate::aws::from_sdk;
use app::endpoints::{MetricSeries, MetricWindow};
use app::ApiError;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};

/// One metric to read: its name, the statistic and the unit it is charted in.
pub struct Wanted {
    pub metric: &'static str,
    pub statistic: Statistic,
    pub unit: &'static str,
}

pub const fn wanted(metric: &'static str, statistic: Statistic, unit: &'static str) -> Wanted {
    Wanted { metric, statistic, unit }
}

/// Each wanted metric of `namespace` with `dimensions` over the window's
/// whole periods (the current one included: CloudWatch aggregates per
/// period from the start time, and an end of "now" would leave out the
/// datapoints of this very second), oldest first.
pub async fn statistics(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Wanted],
    window: MetricWindow,
) -> Result<Vec<MetricSeries>, ApiError> {
    let (start, end) = window.range(time::OffsetDateTime::now_utc().unix_timestamp());
    let mut out = Vec::new();
    for w in metrics {
        let mut request = client
            .get_metric_statistics()
            .namespace(namespace)
            .metric_name(w.metric)
            .start_time(aws_smithy_types::DateTime::from_secs(start))
            .end_time(aws_smithy_types::DateTime::from_secs(end))
            .period(window.period_seconds() as i32)
            .statistics(w.statistic.clone());
        for (name, value) in dimensions {
            request = request.dimensions(Dimension::builder().name(*name).value(*value).build());
        }
        let answer = request.send().await.map_err(|e| from_sdk("CloudWatch GetMetricStatistics", e))?;
        let mut points: Vec<(i64, f64)> = answer
            .datapoints()
            .iter()
            .filter_map(|d| {
                let t = d.timestamp()?.secs();
                let v = match w.statistic {
                    Statistic::Sum => d.sum(),
                    Statistic::Maximum => d.maximum(),
                    Statistic::Minimum => d.minimum(),
                    Statistic::SampleCount => d.sample_count(),
                    _ => d.average(),
                }?;
                Some((t, v))
            })
            .collect();
        points.sort_by_key(|p| p.0);
        out.push(MetricSeries { name: w.metric.into(), statistic: w.statistic.as_str().into(), unit: w.unit.into(), points });
    }
    Ok(out)
}
