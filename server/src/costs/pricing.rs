//! SageMaker instance prices: the AWS Pricing API's on-demand rate for the
//! account's region, kept in SQLite for a week, with the recorded table
//! (`app::costs::prices`, us-east-1) when the API cannot be asked.
//!
//! GetProducts answers SageMaker's "ML Instance" products as JSON documents
//! in strings (`PriceList`); each has `product.attributes` (`regionCode`,
//! `instanceName`, `component`: Notebook, Training, Hosting…; `usagetype`
//! like `USE1-Host:ml.m5.large`) and `terms.OnDemand.*.priceDimensions.*`
//! with `unit` "Hrs" and `pricePerUnit.USD`. The API lives in us-east-1 (and
//! eu-central-1, ap-south-1) whatever the account's region.

use crate::aws::{from_sdk, Aws};
use app::costs::{prices, Usage};
use app::ApiError;
use aws_sdk_pricing::types::{Filter, FilterType};
use serde_json::Value;
use sqlx::SqlitePool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a price read from the API is used before it is read again.
const FRESH_FOR_DAYS: i64 = 7;
/// After the API failed, the recorded table answers this long before the API is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(600);

/// A price and where it came from, in words for the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Priced {
    pub hourly_usd: Option<f64>,
    pub source: String,
}

pub struct PriceBook {
    pool: SqlitePool,
    aws: Arc<Aws>,
    /// The API's last failure and when to try again.
    failure: Mutex<Option<(Instant, String)>>,
}

impl PriceBook {
    pub fn new(pool: SqlitePool, aws: Arc<Aws>) -> Self {
        Self { pool, aws, failure: Mutex::new(None) }
    }

    /// The account's region, `None` on the embedded default.
    pub fn region(&self) -> Option<String> {
        self.aws.clients().ok().and_then(|c| c.config.region().map(|r| r.to_string()))
    }

    /// Where this view's prices come from, in words.
    pub fn describe(&self) -> String {
        match (self.region(), self.failure.lock().expect("failure").clone()) {
            (None, _) => format!("{} (no AWS account)", prices::recorded_label()),
            (Some(_), Some((_, why))) => format!("{}: the AWS Pricing API could not be asked ({why})", prices::recorded_label()),
            (Some(_), None) => "AWS Pricing API (on-demand, cached a week)".to_string(),
        }
    }

    pub async fn price(&self, usage: Usage, instance_type: &str) -> Priced {
        let Some(region) = self.region() else {
            return recorded(usage, instance_type, prices::RECORDED_REGION);
        };
        if let Some(cached) = self.cached(&region, usage, instance_type).await {
            return cached;
        }
        let failed = self.failure.lock().expect("failure").as_ref().is_some_and(|(at, _)| at.elapsed() < RETRY_AFTER);
        if failed {
            return recorded(usage, instance_type, &region);
        }
        match self.ask(&region, usage, instance_type).await {
            Ok((hourly, effective)) => {
                *self.failure.lock().expect("failure") = None;
                self.keep(&region, usage, instance_type, hourly, effective.as_deref()).await;
                Priced { hourly_usd: hourly, source: api_label(hourly, &region, instance_type, usage, &crate::store::now()) }
            }
            Err(e) => {
                tracing::warn!(error = %e.message(), "AWS Pricing API: using the recorded table");
                *self.failure.lock().expect("failure") = Some((Instant::now(), e.message().to_string()));
                recorded(usage, instance_type, &region)
            }
        }
    }

    async fn cached(&self, region: &str, usage: Usage, instance_type: &str) -> Option<Priced> {
        let row: Option<(Option<f64>, String)> = sqlx::query_as(
            "SELECT hourly_usd, fetched_at FROM instance_prices
             WHERE region = ?1 AND usage = ?2 AND instance_type = ?3
               AND fetched_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4)",
        )
        .bind(region)
        .bind(usage.as_str())
        .bind(instance_type)
        .bind(format!("-{FRESH_FOR_DAYS} days"))
        .fetch_optional(&self.pool)
        .await
        .ok()?;
        row.map(|(hourly, at)| Priced { hourly_usd: hourly, source: api_label(hourly, region, instance_type, usage, &at) })
    }

    async fn keep(&self, region: &str, usage: Usage, instance_type: &str, hourly: Option<f64>, effective: Option<&str>) {
        let result = sqlx::query(
            "INSERT INTO instance_prices (region, usage, instance_type, hourly_usd, effective, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (region, usage, instance_type) DO UPDATE SET hourly_usd = ?4, effective = ?5, fetched_at = ?6",
        )
        .bind(region)
        .bind(usage.as_str())
        .bind(instance_type)
        .bind(hourly)
        .bind(effective)
        .bind(crate::store::now())
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "keeping a price");
        }
    }

    /// GetProducts for one type in one region: its on-demand USD hourly
    /// rate for `usage`, `None` when AWS lists no such product.
    async fn ask(&self, region: &str, usage: Usage, instance_type: &str) -> Result<(Option<f64>, Option<String>), ApiError> {
        let client = &self.aws.clients()?.pricing;
        let term = |field: &str, value: &str| {
            Filter::builder()
                .r#type(FilterType::TermMatch)
                .field(field)
                .value(value)
                .build()
                .map_err(|e| ApiError::Internal(format!("building the request: {e}")))
        };
        let mut pages = client
            .get_products()
            .service_code("AmazonSageMaker")
            .format_version("aws_v1")
            .filters(term("regionCode", region)?)
            .filters(term("instanceName", instance_type)?)
            .filters(term("productFamily", "ML Instance")?)
            .into_paginator()
            .send();
        let mut documents = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("AWS Pricing GetProducts", e))?;
            documents.extend(page.price_list().iter().cloned());
        }
        Ok(on_demand_hourly(&documents, usage, instance_type))
    }
}

fn recorded(usage: Usage, instance_type: &str, region: &str) -> Priced {
    if region != prices::RECORDED_REGION {
        return Priced {
            hourly_usd: None,
            source: format!("no price: the recorded table is {}'s, not {region}'s", prices::RECORDED_REGION),
        };
    }
    let hourly = prices::recorded(usage, instance_type);
    let source = match hourly {
        Some(_) => prices::recorded_label(),
        None => format!("no price: {instance_type} ({}) is not in the {}", usage.as_str(), prices::recorded_label()),
    };
    Priced { hourly_usd: hourly, source }
}

fn api_label(hourly: Option<f64>, region: &str, instance_type: &str, usage: Usage, fetched_at: &str) -> String {
    match hourly {
        Some(_) => format!("AWS Pricing API, {region}, read {}", fetched_at.get(..10).unwrap_or(fetched_at)),
        None => format!("no price: the AWS Pricing API lists no {instance_type} for {} in {region}", usage.as_str()),
    }
}

/// The on-demand USD hourly rate of the first product for `usage` among
/// GetProducts' documents, and the date it took effect. Spot and other
/// non-instance products of the same type are skipped by their usage type.
pub fn on_demand_hourly(documents: &[String], usage: Usage, instance_type: &str) -> (Option<f64>, Option<String>) {
    for doc in documents {
        let Ok(v) = serde_json::from_str::<Value>(doc) else { continue };
        let attrs = &v["product"]["attributes"];
        if attrs["instanceName"].as_str().is_some_and(|n| n != instance_type) {
            continue;
        }
        let component = attrs["component"].as_str().unwrap_or_default();
        let usage_type = attrs["usagetype"].as_str().unwrap_or_default();
        let usage_marker = match usage {
            Usage::Notebook => "-Notebk:",
            Usage::Training => "-Train:",
            Usage::Hosting => "-Host:",
        };
        // Either attribute says the use: the component's first word
        // ("Hosting", "Training", "Notebook…") or the usage type's
        // (`USE1-Host:ml.m5.large`). Studio and spot products are other prices.
        let matches = component.starts_with(usage.component()) || usage_type.contains(usage_marker);
        if !matches || usage_type.contains("Spot") || component.starts_with("Studio") {
            continue;
        }
        let Some(terms) = v["terms"]["OnDemand"].as_object() else { continue };
        for term in terms.values() {
            let Some(dimensions) = term["priceDimensions"].as_object() else { continue };
            for d in dimensions.values() {
                let hourly = d["unit"].as_str().is_some_and(|u| u.eq_ignore_ascii_case("hrs"));
                let usd = d["pricePerUnit"]["USD"].as_str().and_then(|p| p.parse::<f64>().ok());
                if let (true, Some(usd)) = (hourly, usd) {
                    if usd > 0.0 {
                        return (Some(usd), term["effectiveDate"].as_str().map(str::to_string));
                    }
                }
            }
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One GetProducts document as AWS writes it (trimmed of attributes
    /// this code does not read).
    fn document(component: &str, usage_type: &str, usd: &str) -> String {
        serde_json::json!({
            "product": {
                "productFamily": "ML Instance",
                "attributes": {
                    "regionCode": "us-east-1", "instanceName": "ml.m5.large", "component": component,
                    "usagetype": usage_type, "servicecode": "AmazonSageMaker", "vCpu": "2", "memory": "8 GiB"
                },
                "sku": "ABCDEF"
            },
            "serviceCode": "AmazonSageMaker",
            "terms": { "OnDemand": { "ABCDEF.JRTCKXETXF": {
                "priceDimensions": { "ABCDEF.JRTCKXETXF.6YS6EN2CT7": {
                    "unit": "Hrs", "endRange": "Inf", "description": "$0.115 per hour", "appliesTo": [], "rateCode": "ABCDEF.JRTCKXETXF.6YS6EN2CT7",
                    "beginRange": "0", "pricePerUnit": { "USD": usd }
                }},
                "sku": "ABCDEF", "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": "JRTCKXETXF", "termAttributes": {}
            }}},
            "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z"
        })
        .to_string()
    }

    #[test]
    fn the_rate_for_the_asked_use_is_read_from_the_on_demand_terms() {
        let docs = vec![
            document("Training", "USE1-Train:ml.m5.large", "0.1150000000"),
            document("Hosting", "USE1-Host:ml.m5.large", "0.1300000000"),
        ];
        assert_eq!(on_demand_hourly(&docs, Usage::Hosting, "ml.m5.large"), (Some(0.13), Some("2026-11-01T00:00:00Z".into())));
        assert_eq!(on_demand_hourly(&docs, Usage::Training, "ml.m5.large").0, Some(0.115));
        assert_eq!(on_demand_hourly(&docs, Usage::Notebook, "ml.m5.large"), (None, None));
    }

    #[test]
    fn spot_zero_and_unreadable_documents_are_skipped() {
        let docs = vec![
            "not json".to_string(),
            document("Training", "USE1-Spot:ml.m5.large", "0.0345"),
            document("Training", "USE1-Train:ml.m5.large", "0.0000000000"),
            document("Training", "USE1-Train:ml.m5.large", "0.1150000000"),
        ];
        assert_eq!(on_demand_hourly(&docs, Usage::Training, "ml.m5.large").0, Some(0.115));
    }

    #[test]
    fn without_a_component_the_usage_type_says_the_use() {
        let docs = vec![document("", "USE1-Notebk:ml.m5.large", "0.1150000000")];
        assert_eq!(on_demand_hourly(&docs, Usage::Notebook, "ml.m5.large").0, Some(0.115));
        assert_eq!(on_demand_hourly(&docs, Usage::Hosting, "ml.m5.large").0, None);
    }

    #[test]
    fn studio_products_of_the_same_type_are_not_notebook_instances() {
        let docs = vec![
            document("Studio-Notebook", "USE1-Studio:ml.m5.large", "0.2300000000"),
            document("Notebook Instance", "USE1-Notebk:ml.m5.large", "0.1150000000"),
        ];
        assert_eq!(on_demand_hourly(&docs, Usage::Notebook, "ml.m5.large").0, Some(0.115));
    }

    #[test]
    fn the_recorded_table_answers_for_its_own_region_only() {
        assert_eq!(recorded(Usage::Hosting, "ml.m5.large", "us-east-1").hourly_usd, Some(0.115));
        let elsewhere = recorded(Usage::Hosting, "ml.m5.large", "eu-west-3");
        assert_eq!(elsewhere.hourly_usd, None);
        assert!(elsewhere.source.contains("eu-west-3"), "{elsewhere:?}");
    }
}
