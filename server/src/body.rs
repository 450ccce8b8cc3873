//! Request bodies: read with a limit (a body over it is drained, bounded,
//! so the client reads the refusal instead of a broken pipe), and the image
//! payload an invocation carries, which endpoints and the local Lambda
//! handler read alike.

use app::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use base64::Engine;
use serde::Deserialize;

/// SageMaker's own limit on an InvokeEndpoint payload.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// What the request carries.
#[derive(Debug, PartialEq)]
pub enum Payload {
    Image(Bytes),
    Url(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPayload {
    image_base64: Option<String>,
    url: Option<String>,
}

/// Reads the body by its Content-Type.
pub fn parse_payload(content_type: Option<&str>, body: Bytes) -> Result<Payload, ApiError> {
    let Some(content_type) = content_type else {
        return Err(ApiError::UnsupportedType(
            "the request has no Content-Type: send image/jpeg, image/png, application/x-image or application/json".into(),
        ));
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "image/jpeg" | "image/jpg" | "image/png" | "application/x-image" => Ok(Payload::Image(body)),
        "application/json" => {
            let json: JsonPayload = serde_json::from_slice(&body).map_err(|e| {
                ApiError::Invalid(format!(
                    "the JSON body cannot be read ({e}): send {{\"image_base64\": \"...\"}} or {{\"url\": \"https://...\"}}"
                ))
            })?;
            match (json.image_base64, json.url) {
                (Some(b64), None) => {
                    // Browsers' FileReader gives data URLs; accept them as well.
                    let b64 = b64.split_once(";base64,").map_or(b64.as_str(), |(_, data)| data);
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| ApiError::Invalid(format!("image_base64 is not valid base64: {e}")))?;
                    Ok(Payload::Image(Bytes::from(bytes)))
                }
                (None, Some(url)) => Ok(Payload::Url(url)),
                (Some(_), Some(_)) => Err(ApiError::Invalid("send either image_base64 or url, not both".into())),
                (None, None) => Err(ApiError::Invalid("the JSON body needs image_base64 or url".into())),
            }
        }
        other => Err(ApiError::UnsupportedType(format!(
            "{other} is not accepted: send image/jpeg, image/png, application/x-image, or application/json with image_base64 or url"
        ))),
    }
}

/// How much of an oversized body is read and thrown away before the 413 is
/// sent: a client still writing would otherwise see its connection cut
/// (a broken pipe) instead of the answer. Beyond this, or after
/// [`DRAIN_TIME`], the connection is simply closed.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads and drops a body that will be refused (bounded: 64 MB, 10 s), so
/// that a client still writing it reads the refusal instead of a broken pipe.
pub async fn drain(body: Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

/// Reads at most [`MAX_PAYLOAD`] bytes; more is a 413 (after draining the rest, bounded).
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let too_large = |n: Option<u64>| {
        ApiError::TooLarge(match n {
            Some(n) => format!("the payload is {:.1} MB; the limit is 6 MB (SageMaker's InvokeEndpoint limit)", n as f64 / 1e6),
            None => "the payload is over the 6 MB limit (SageMaker's InvokeEndpoint limit)".to_string(),
        })
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    let mut read = Vec::<u8>::new();
    let mut over = declared.is_some_and(|n| n > MAX_PAYLOAD as u64);
    let mut seen = 0usize;
    let drained = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::Invalid(format!("the request body could not be read: {e}")))?;
            seen += chunk.len();
            if !over && read.len() + chunk.len() > MAX_PAYLOAD {
                over = true;
                read = Vec::<u8>::new();
            }
            if !over {
                read.extend_from_slice(&chunk);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
        Ok::<(), ApiError>(())
    })
    .await;
    match drained {
        Ok(Err(e)) if !over => Err(e),
        _ if over => Err(too_large(declared.or(Some(seen as u64)).filter(|n| *n > MAX_PAYLOAD as u64))),
        Err(_) => Err(ApiError::Invalid("the request body did not arrive within 10 s".into())),
        _ => Ok(Bytes::from(read)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_payload_form() {
        let img = Bytes::from_static(b"\xff\xd8");
        assert_eq!(parse_payload(Some("image/jpeg"), img.clone()).unwrap(), Payload::Image(img.clone()));
        assert_eq!(parse_payload(Some("Application/X-Image; q=1"), img.clone()).unwrap(), Payload::Image(img.clone()));
        assert_eq!(parse_payload(Some("text/plain"), img.clone()).unwrap_err().status(), 415);
        assert_eq!(parse_payload(None, img).unwrap_err().status(), 415);
    }

    #[test]
    fn json_bodies_carry_base64_or_a_url() {
        let b64 = Bytes::from(r#"{"image_base64": "aGVsbG8="}"#);
        assert_eq!(parse_payload(Some("application/json"), b64).unwrap(), Payload::Image(Bytes::from_static(b"hello")));
        let data_url = Bytes::from(r#"{"image_base64": "data:image/png;base64,aGVsbG8="}"#);
        assert_eq!(parse_payload(Some("application/json"), data_url).unwrap(), Payload::Image(Bytes::from_static(b"hello")));
        let url = Bytes::from(r#"{"url": "https://example.com/dog.jpg"}"#);
        assert_eq!(parse_payload(Some("application/json"), url).unwrap(), Payload::Url("https://example.com/dog.jpg".into()));
        for (body, words) in [
            ("{", "cannot be read"),
            (r#"{"image_base64": "!!"}"#, "not valid base64"),
            ("{}", "needs image_base64 or url"),
            (r#"{"url": "a", "image_base64": "b"}"#, "not both"),
            (r#"{"img": "x"}"#, "cannot be read"),
        ] {
            let err = parse_payload(Some("application/json"), Bytes::from(body)).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert!(err.message().contains(words), "{body}: {}", err.message());
        }
    }
}
