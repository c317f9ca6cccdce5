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
    /// Seconds a client should wait before retrying (sent as `Retry-After`; every 503
    /// carries one).
    pub retry_after: Option<u32>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: (status == 503).then_some(1),
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
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

    /// 500: a fault on our side (the store or an index failed). The cause goes to the
    /// server log under a number; the caller gets only the number, because causes can
    /// name server paths and the caller may be anyone.
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!("internal error #{n}: {message}");
        ApiError::new(
            500,
            "internal",
            format!("internal error #{n} (the server log has the cause)"),
        )
        .with_details(json!({ "incident": n }))
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
        // The cause is logged, not shown: it can name a database file or host.
        tracing::warn!("catalogue store: {e}");
        let message = if e.is_busy() {
            "the catalogue store is busy: retry shortly"
        } else {
            "the catalogue store is unavailable: retry shortly"
        };
        ApiError::new(503, "store_unavailable", message).retry_after(2)
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
