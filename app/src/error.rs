//! The one error type that crosses from the server to the browser and to API clients.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// One field's problem, for inline form messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A failure a person can act on. Serialized as `{"code": "...", "message": "...", ...}`;
/// `code` is stable for automation, `message` is for people.
///
/// Read back through [`WireError`]: serde's derive for an internally tagged enum buffers the
/// whole value first, and that code was about 30 KB of the browser's shell before optimizing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "code", rename_all = "snake_case", try_from = "WireError")]
pub enum AppError {
    #[error("{message}")]
    Invalid {
        message: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<FieldError>,
    },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Conflict {
        message: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<FieldError>,
    },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    RateLimited { message: String },
    #[error("{message}")]
    TooLarge { message: String },
    /// A system Pangea asks on the person's behalf (a cluster's Prometheus) did not answer.
    #[error("{message}")]
    Upstream { message: String },
    /// Pangea's own database did not answer (stopped, restarting, unreachable): try again.
    #[error("{message}")]
    Unavailable { message: String },
    #[error("Something went wrong on the server; it was logged with request id {request_id}.")]
    Internal { request_id: String },
    /// The request never reached Pangea's logic (network down, body unreadable, ...).
    #[error("The request failed: {message}")]
    Request { message: String },
}

/// Every field any variant has, flat, as [`AppError`] is written.
#[derive(Deserialize)]
struct WireError {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: Vec<FieldError>,
    #[serde(default)]
    request_id: String,
}

impl TryFrom<WireError> for AppError {
    type Error = String;

    fn try_from(wire: WireError) -> Result<Self, String> {
        let WireError { code, message, fields, request_id } = wire;
        Ok(match code.as_str() {
            "invalid" => AppError::Invalid { message, fields },
            "not_found" => AppError::NotFound { message },
            "conflict" => AppError::Conflict { message, fields },
            "unauthorized" => AppError::Unauthorized { message },
            "forbidden" => AppError::Forbidden { message },
            "rate_limited" => AppError::RateLimited { message },
            "too_large" => AppError::TooLarge { message },
            "upstream" => AppError::Upstream { message },
            "unavailable" => AppError::Unavailable { message },
            "internal" => AppError::Internal { request_id },
            "request" => AppError::Request { message },
            other => return Err(format!("unknown error code {other:?}")),
        })
    }
}

impl AppError {
    pub fn invalid(message: impl Into<String>) -> Self {
        AppError::Invalid { message: message.into(), fields: Vec::new() }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::NotFound { message: message.into() }
    }

    /// The HTTP status this error is answered with: 4xx for what the client can fix.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Invalid { .. } | AppError::Request { .. } => 400,
            AppError::Unauthorized { .. } => 401,
            AppError::Forbidden { .. } => 403,
            AppError::RateLimited { .. } => 429,
            AppError::NotFound { .. } => 404,
            AppError::Conflict { .. } => 409,
            AppError::TooLarge { .. } => 413,
            AppError::Internal { .. } => 500,
            AppError::Upstream { .. } => 502,
            AppError::Unavailable { .. } => 503,
        }
    }

    /// The message for one form field, if this error names it.
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            AppError::Invalid { fields, .. } | AppError::Conflict { fields, .. } => {
                fields.iter().find(|f| f.field == name).map(|f| f.message.clone())
            }
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Request { message: value.to_string() }
    }
}

/// While rendering on the server, answers the response with `status`; does nothing in the browser.
pub fn set_response_status(status: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(options), Ok(status)) =
        (leptos::prelude::use_context::<leptos_axum::ResponseOptions>(), axum::http::StatusCode::from_u16(status))
    {
        options.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_reads_back_as_written() {
        let field = || vec![FieldError { field: "mac".into(), message: "not a MAC".into() }];
        let errors = [
            AppError::Invalid { message: "m".into(), fields: field() },
            AppError::Invalid { message: "m".into(), fields: Vec::new() },
            AppError::NotFound { message: "m".into() },
            AppError::Conflict { message: "m".into(), fields: field() },
            AppError::Unauthorized { message: "m".into() },
            AppError::Forbidden { message: "m".into() },
            AppError::RateLimited { message: "m".into() },
            AppError::TooLarge { message: "m".into() },
            AppError::Upstream { message: "m".into() },
            AppError::Unavailable { message: "m".into() },
            AppError::Internal { request_id: "r1".into() },
            AppError::Request { message: "m".into() },
        ];
        for error in errors {
            let json = serde_json::to_string(&error).unwrap();
            assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), error, "{json}");
        }
    }

    #[test]
    fn the_wire_form_is_flat_with_a_code() {
        let json = serde_json::to_value(AppError::Conflict {
            message: "taken".into(),
            fields: vec![FieldError { field: "mac".into(), message: "in use".into() }],
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "conflict", "message": "taken", "fields": [{"field": "mac", "message": "in use"}]})
        );
        assert_eq!(
            serde_json::from_str::<AppError>(r#"{"code":"internal","request_id":"abc"}"#).unwrap(),
            AppError::Internal { request_id: "abc".into() }
        );
        let unknown = serde_json::from_str::<AppError>(r#"{"code":"teapot","message":"m"}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown error code \"teapot\""), "{unknown}");
    }
}
