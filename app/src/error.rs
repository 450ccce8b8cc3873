//! The error every server function returns. Each variant is one HTTP status,
//! so the browser, the API and the tests see the same classification.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message")]
pub enum ApiError {
    /// 503: the backend this call needs is not set up (for example no AWS
    /// credentials or region). The message says what to configure.
    #[error("{0}")]
    NotConfigured(String),
    /// 400: the request was refused by our validation or AWS's.
    #[error("{0}")]
    Invalid(String),
    /// 401: the console has sign-in on and this request carries no valid
    /// session or API token.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: the signed-in role, a missing CSRF token, or AWS says the caller
    /// may not do this.
    #[error("{0}")]
    AccessDenied(String),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: the resource is in a state that does not allow this change.
    #[error("{0}")]
    Conflict(String),
    /// 413: the request body is over the route's limit (6 MB for invocations).
    #[error("{0}")]
    TooLarge(String),
    /// 415: a content type the route does not accept.
    #[error("{0}")]
    UnsupportedType(String),
    /// 422: well-formed but unusable, such as an image that cannot be decoded.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: AWS throttled the call even after the SDK's retries, or a local
    /// endpoint's queue is full.
    #[error("{0}")]
    Throttled(String),
    /// 502: AWS could not be reached or answered with an error we do not
    /// classify; the message carries AWS's own words.
    #[error("{0}")]
    Upstream(String),
    /// 500: a fault of ours. Details go to the server log, not the client.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// [`ApiError::status`] as the server's HTTP type: every route that
    /// answers an `ApiError` (server functions, invocations, the auth guard,
    /// Lambda's API) takes its status from here.
    #[cfg(feature = "ssr")]
    pub fn http_status(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid(_) => 400,
            ApiError::Unauthenticated(_) => 401,
            ApiError::AccessDenied(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedType(_) => 415,
            ApiError::Unprocessable(_) => 422,
            ApiError::Throttled(_) => 429,
            ApiError::Internal(_) => 500,
            ApiError::Upstream(_) => 502,
            ApiError::NotConfigured(_) => 503,
        }
    }

    /// A short heading for the error panel.
    pub fn title(&self) -> &'static str {
        match self {
            ApiError::NotConfigured(_) => "Not configured",
            ApiError::Invalid(_) => "Invalid request",
            ApiError::Unauthenticated(_) => "Sign-in needed",
            ApiError::AccessDenied(_) => "Access denied",
            ApiError::NotFound(_) => "Not found",
            ApiError::Conflict(_) => "Not possible in this state",
            ApiError::TooLarge(_) => "Too large",
            ApiError::UnsupportedType(_) => "Unsupported type",
            ApiError::Unprocessable(_) => "Cannot be processed",
            ApiError::Throttled(_) => "Too many requests",
            ApiError::Upstream(_) => "AWS error",
            ApiError::Internal(_) => "Internal error",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::NotConfigured(m)
            | ApiError::Invalid(m)
            | ApiError::Unauthenticated(m)
            | ApiError::AccessDenied(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::TooLarge(m)
            | ApiError::UnsupportedType(m)
            | ApiError::Unprocessable(m)
            | ApiError::Throttled(m)
            | ApiError::Upstream(m)
            | ApiError::Internal(m) => m,
        }
    }

    /// The same kind of error with its message rewritten (to say what the
    /// failure means for the whole operation).
    pub fn map_message(self, f: impl FnOnce(&str) -> String) -> ApiError {
        let message = f(self.message());
        match self {
            ApiError::NotConfigured(_) => ApiError::NotConfigured(message),
            ApiError::Invalid(_) => ApiError::Invalid(message),
            ApiError::Unauthenticated(_) => ApiError::Unauthenticated(message),
            ApiError::AccessDenied(_) => ApiError::AccessDenied(message),
            ApiError::NotFound(_) => ApiError::NotFound(message),
            ApiError::Conflict(_) => ApiError::Conflict(message),
            ApiError::TooLarge(_) => ApiError::TooLarge(message),
            ApiError::UnsupportedType(_) => ApiError::UnsupportedType(message),
            ApiError::Unprocessable(_) => ApiError::Unprocessable(message),
            ApiError::Throttled(_) => ApiError::Throttled(message),
            ApiError::Upstream(_) => ApiError::Upstream(message),
            ApiError::Internal(_) => ApiError::Internal(message),
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::Deserialization(m) => {
                ApiError::Invalid(format!("malformed request: {m}"))
            }
            ServerFnErrorErr::Request(m) => {
                ApiError::Upstream(format!("could not reach the Sagedeck server: {m}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Fetches a service the server put into the request context.
#[cfg(feature = "ssr")]
pub fn service<T: Clone + Send + Sync + 'static>() -> Result<T, ApiError> {
    leptos::prelude::use_context::<T>().ok_or_else(|| {
        ApiError::Internal(format!(
            "service {} is not registered in the server",
            std::any::type_name::<T>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_own_status() {
        let all = [
            ApiError::NotConfigured(String::new()),
            ApiError::Invalid(String::new()),
            ApiError::Unauthenticated(String::new()),
            ApiError::AccessDenied(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::Conflict(String::new()),
            ApiError::TooLarge(String::new()),
            ApiError::UnsupportedType(String::new()),
            ApiError::Unprocessable(String::new()),
            ApiError::Throttled(String::new()),
            ApiError::Upstream(String::new()),
            ApiError::Internal(String::new()),
        ];
        let mut codes: Vec<u16> = all.iter().map(ApiError::status).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn serialises_with_kind_and_message() {
        let json = serde_json::to_string(&ApiError::Conflict("busy".into())).unwrap();
        assert_eq!(json, r#"{"kind":"Conflict","message":"busy"}"#);
        let back: ApiError = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ApiError::Conflict("busy".into()));
    }

    #[test]
    fn a_rewritten_message_keeps_the_kind() {
        let e = ApiError::AccessDenied("no".into()).map_message(|m| format!("upload refused: {m}"));
        assert_eq!(e, ApiError::AccessDenied("upload refused: no".into()));
    }

    #[test]
    fn malformed_arguments_are_invalid_requests() {
        let err = ApiError::from_server_fn_error(ServerFnErrorErr::Args("missing field `name`".into()));
        assert_eq!(err.status(), 400);
        assert!(err.message().contains("missing field"));
    }
}
