//! The invoke routes, with SageMaker's semantics:
//! `POST /endpoints/{name}/invocations` (local, in-process) and
//! `POST /aws/endpoints/{name}/invocations` (forwarded to sagemaker-runtime).
//!
//! Bodies: `image/jpeg`, `image/png`, `application/x-image`, or
//! `application/json` with `{"image_base64": ...}` or `{"url": ...}` (the
//! seeds' Lambda form). The answer is the raw logits, `[[...]]`, as the seeds'
//! endpoint returns them; `?top_k=N` (or the SageMaker custom attribute
//! `top_k=N`) asks for the verbose answer with class names and latencies.

use super::EndpointHub;
use crate::body::{parse_payload, read_body, Payload};
use app::endpoints::{top_k, VerboseAnswer};
use app::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};


pub fn routes(hub: Arc<EndpointHub>) -> Router {
    Router::new()
        .route("/endpoints/{name}/invocations", post(invoke_local))
        .route("/aws/endpoints/{name}/invocations", post(invoke_sagemaker))
        .with_state(hub)
}

#[derive(Deserialize, Default)]
pub struct InvokeQuery {
    top_k: Option<usize>,
}

/// `?top_k=N`, or `top_k=N` in SageMaker's custom-attributes header.
pub fn requested_top_k(query: &InvokeQuery, headers: &HeaderMap) -> Option<usize> {
    query
        .top_k
        .or_else(|| {
            let attrs = headers.get("x-amzn-sagemaker-custom-attributes")?.to_str().ok()?;
            attrs.split([',', ';']).find_map(|kv| kv.trim().strip_prefix("top_k=")?.trim().parse().ok())
        })
        .map(|k| k.clamp(1, 1000))
}

fn error_response(error: &ApiError) -> Response {
    let status = error.http_status();
    let mut response = (status, axum::Json(error)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// What SageMaker Runtime answers for the same failure: its HTTP status, its
/// error code, and for a failure of the model container the container's own
/// status (SageMaker passes a body to the container unread, so a body the
/// container refuses comes back as ModelError with the container's answer).
pub fn sagemaker_shape(error: &ApiError) -> (u16, &'static str, Option<u16>) {
    match error {
        ApiError::NotFound(_) | ApiError::Conflict(_) => (400, "ValidationError", None),
        ApiError::TooLarge(_) => (413, "ValidationError", None),
        ApiError::Invalid(_) | ApiError::UnsupportedType(_) | ApiError::Unprocessable(_) | ApiError::Upstream(_) => {
            (424, "ModelError", Some(error.status()))
        }
        ApiError::Throttled(_) => (429, "ThrottlingException", None),
        ApiError::NotConfigured(_) => (429, "ModelNotReadyException", None),
        ApiError::Unauthenticated(_) | ApiError::AccessDenied(_) => (error.status(), "AccessDeniedException", None),
        ApiError::Internal(_) => (500, "InternalFailure", None),
    }
}

/// A local endpoint's failed invocation in SageMaker Runtime's error shape
/// (restJson1): the code in `x-amzn-ErrorType`, which boto3 and the AWS CLI
/// turn into their modelled exceptions (`client.exceptions.ModelError`…),
/// and a JSON body with `message` (ModelError adds `OriginalStatusCode`,
/// `OriginalMessage`, `LogStreamArn`). `kind` stays for the console's own
/// pages and older scripts; the words are the same.
pub fn sagemaker_error_response(endpoint: &str, error: &ApiError) -> Response {
    let (status, code, original) = sagemaker_shape(error);
    let words = error.message();
    let mut body = serde_json::json!({ "message": words });
    if let Some(original) = original {
        body["message"] = format!("Received client error ({original}) from primary with message \"{words}\". See the endpoint's log in the console for more information.").into();
        body["OriginalStatusCode"] = original.into();
        body["OriginalMessage"] = words.into();
        body["LogStreamArn"] = format!("sagedeck:local-endpoint/{endpoint}").into();
    }
    // The console's own kind and words, for the Test panel and older scripts.
    body["kind"] = serde_json::to_value(error).ok().and_then(|v| v.get("kind").cloned()).unwrap_or_default();
    body["detail"] = words.into();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/")) {
        h.insert("x-amzn-errortype", v);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn invoke_local(
    State(hub): State<Arc<EndpointHub>>,
    Path(name): Path<String>,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(routed) = hub.route(&name) else {
        // Stored but not serving (it failed to start): SageMaker's "not ready".
        if let Some(why) = hub.not_serving(&name).await {
            return sagemaker_error_response(&name, &ApiError::NotConfigured(format!("endpoint {name} is not serving: {why}")));
        }
        return sagemaker_error_response(&name, &ApiError::NotFound(format!("Endpoint {name} not found (no local endpoint has that name).")));
    };
    let top = requested_top_k(&query, &headers);
    let result = async {
        let body = read_body(&headers, body).await?;
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let bytes = match parse_payload(content_type, body)? {
            Payload::Image(bytes) => bytes,
            Payload::Url(url) => hub.fetcher.fetch(&url).await?,
        };
        hub.run_routed(&name, &routed, bytes).await
    }
    .await;
    let total = started.elapsed();
    let runtime = &routed.runtime;
    hub.record_outcome(&name, runtime.instances(), total, result.as_ref());
    routed.record(matches!(&result, Err(e) if e.status() >= 500), ms(total));
    // Which model version answered (during a rollout, either).
    let version = HeaderValue::from(runtime.version);
    let answer = match result {
        Ok(answer) => answer,
        Err(error) => {
            let mut response = sagemaker_error_response(&name, &error);
            response.headers_mut().insert("x-sagedeck-model-version", version);
            return response;
        }
    };
    let overhead = total.saturating_sub(answer.model);
    let raw = serde_json::to_string(&[&answer.logits]).unwrap_or_default();
    let mut response = if top.is_some() {
        axum::Json(VerboseAnswer {
            predictions: top_k(&answer.logits, &runtime.info.metadata.classes, top.unwrap_or(5)),
            logits: vec![answer.logits],
            raw,
            total_latency_ms: ms(total),
            model_latency_ms: Some(ms(answer.model)),
            overhead_latency_ms: Some(ms(overhead)),
            batch_size: Some(answer.batch_size),
            image: Some(answer.image),
        })
        .into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], raw).into_response()
    };
    let h = response.headers_mut();
    h.insert("x-amzn-invoked-production-variant", HeaderValue::from_static("AllTraffic"));
    h.insert("x-sagedeck-model-version", version);
    for (key, value) in [
        ("x-sagedeck-model-latency-ms", ms(answer.model)),
        ("x-sagedeck-overhead-latency-ms", ms(overhead)),
        ("x-sagedeck-batch-size", f64::from(answer.batch_size)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&format!("{value:.3}")) {
            h.insert(key, v);
        }
    }
    response
}

async fn invoke_sagemaker(
    State(hub): State<Arc<EndpointHub>>,
    Path(name): Path<String>,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let top = requested_top_k(&query, &headers);
    let result = async {
        let name = app::names::EndpointName::parse(&name)?;
        let body = read_body(&headers, body).await?;
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        // Checked here too so a wrong type is refused without a paid call;
        // the body goes to the endpoint as it came, as InvokeEndpoint sends it.
        parse_payload(content_type.as_deref(), body.clone())?;
        hub.sagemaker.invoke(&name, content_type.as_deref().unwrap_or_default(), body).await
    }
    .await;
    match result {
        Ok((content_type, body)) => {
            let total = started.elapsed();
            if top.is_none() {
                return ([(header::CONTENT_TYPE, content_type)], body).into_response();
            }
            let raw = String::from_utf8_lossy(&body).to_string();
            let logits: Vec<Vec<f32>> = serde_json::from_str(&raw).unwrap_or_default();
            let predictions = logits.first().map(|row| top_k(row, &[], top.unwrap_or(5))).unwrap_or_default();
            axum::Json(VerboseAnswer {
                predictions,
                logits,
                raw,
                total_latency_ms: ms(total),
                model_latency_ms: None,
                overhead_latency_ms: None,
                batch_size: None,
                image: None,
            })
            .into_response()
        }
        Err(error) => error_response(&error),
    }
}

/// Whether an address is on the public internet: loopback, private,
/// link-local (cloud metadata at 169.254.169.254), shared, documentation,
/// multicast and unspecified ranges are not.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0xdb8)
        }
    }
}

/// Fetches images for `{"url": ...}` bodies: off unless turned on, http(s)
/// only, public addresses only (checked after DNS, and the connection is
/// pinned to the checked address), no redirects, a size and a time limit.
pub struct UrlFetcher {
    pub enabled: bool,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl UrlFetcher {
    pub async fn fetch(&self, url: &str) -> Result<Bytes, ApiError> {
        if !self.enabled {
            return Err(ApiError::Invalid(
                "fetching images by URL is turned off on this console; send the image's bytes, or start Sagedeck with --allow-url-fetch".into(),
            ));
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| ApiError::Invalid(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::Invalid(format!("only http and https URLs are fetched, not {}:", parsed.scheme())));
        }
        let host = parsed.host_str().ok_or_else(|| ApiError::Invalid(format!("{url:?} has no host")))?.to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(self.timeout, tokio::net::lookup_host((host.trim_matches(['[', ']']), port)))
            .await
            .map_err(|_| ApiError::Invalid(format!("resolving {host} took too long")))?
            .map_err(|e| ApiError::Invalid(format!("cannot resolve {host}: {e}")))?;
        let addrs: Vec<SocketAddr> = lookup.collect();
        let Some(addr) = addrs.first().copied() else {
            return Err(ApiError::Invalid(format!("{host} has no address")));
        };
        if let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(ApiError::Invalid(format!(
                "{host} resolves to {}, a loopback, private or link-local address: such URLs are refused",
                private.ip()
            )));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .resolve(&host, addr)
            .build()
            .map_err(|e| ApiError::Internal(format!("cannot build the URL fetcher: {e}")))?;
        let mut response = client
            .get(parsed)
            .send()
            .await
            .map_err(|e| ApiError::Invalid(format!("fetching {url} failed: {e}")))?;
        if !response.status().is_success() {
            return Err(ApiError::Invalid(format!("fetching {url} answered HTTP {}", response.status())));
        }
        let limit = self.max_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(ApiError::TooLarge(format!("the image at {url} is over {} MB", limit / 1_000_000)));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| ApiError::Invalid(format!("fetching {url} failed: {e}")))? {
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::TooLarge(format!("the image at {url} is over {} MB", limit / 1_000_000)));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_from_query_or_custom_attributes() {
        let mut headers = HeaderMap::new();
        assert_eq!(requested_top_k(&InvokeQuery::default(), &headers), None);
        assert_eq!(requested_top_k(&InvokeQuery { top_k: Some(3) }, &headers), Some(3));
        headers.insert("x-amzn-sagemaker-custom-attributes", HeaderValue::from_static("trace=1, top_k=7"));
        assert_eq!(requested_top_k(&InvokeQuery::default(), &headers), Some(7));
    }

    #[test]
    fn private_and_metadata_addresses_are_not_public() {
        for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "224.0.0.1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_fetcher_refuses_before_connecting() {
        let fetcher = UrlFetcher { enabled: true, max_bytes: 1000, timeout: Duration::from_secs(2) };
        for (url, words) in [
            ("file:///etc/passwd", "only http and https"),
            ("http://127.0.0.1:9/x.jpg", "loopback, private or link-local"),
            ("http://169.254.169.254/latest/meta-data", "loopback, private or link-local"),
            ("http://localhost/x.png", "loopback, private or link-local"),
            ("not a url", "is not a URL"),
        ] {
            let err = fetcher.fetch(url).await.unwrap_err();
            assert_eq!(err.status(), 400, "{url}");
            assert!(err.message().contains(words), "{url}: {}", err.message());
        }
        let off = UrlFetcher { enabled: false, ..fetcher };
        assert!(off.fetch("https://example.com/x.jpg").await.unwrap_err().message().contains("turned off"));
    }
}
