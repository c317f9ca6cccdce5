//! The one error type of the query API, shaped as DESIGN.md asks:
//! `{"error": {"code": "...", "message": "...", "details": {...}}}` with the right status.

use serde_json::{json, Value};

/// An answer that is not a result: a bad parameter, an unknown id, a server fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable snake_case code clients can branch on.
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    /// 400: a parameter is missing, malformed or out of range.
    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    /// 400 for a parameter whose value is not a number.
    pub fn bad_number(param: &str, value: &str) -> ApiError {
        ApiError::bad("bad_number", format!("{param}: {value:?} is not a number"))
            .with_details(json!({ "param": param, "value": value }))
    }

    /// 404 for a track id that is not in the catalogue (or taken down).
    pub fn unknown_track(id: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            404,
            "unknown_track",
            format!("no active track with id {id}"),
        )
        .with_details(json!({ "id": id.to_string() }))
    }

    /// 500: a fault on our side (the store or an index failed).
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, "internal", message.to_string())
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut e = json!({ "code": self.code, "message": self.message });
        if !self.details.is_null() {
            e["details"] = self.details.clone();
        }
        json!({ "error": e })
    }
}

impl From<indexer::catalog::CatalogError> for ApiError {
    fn from(e: indexer::catalog::CatalogError) -> Self {
        ApiError::new(503, "store_unavailable", format!("catalogue store: {e}"))
    }
}

impl From<indexer::text::TextError> for ApiError {
    fn from(e: indexer::text::TextError) -> Self {
        match e {
            indexer::text::TextError::Query(m) => ApiError::bad("bad_query", m),
            other => ApiError::internal(other),
        }
    }
}

impl From<indexer::derived::DerivedError> for ApiError {
    fn from(e: indexer::derived::DerivedError) -> Self {
        ApiError::internal(e)
    }
}
