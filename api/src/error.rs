use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::openapi::ErrorDetail;

/// Every error the API returns, with its status. Bodies are JSON and name the offending field;
/// internal causes are logged once and never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this route needs the `{0}` scope")]
    Forbidden(&'static str),
    /// The caller may not do this with this value of a field (a job kind above its exposure).
    #[error("{message}")]
    Refused { field: String, message: String },
    #[error("{message}")]
    BadRequest { field: String, message: String },
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests; retry in {} s", retry_secs(.0))]
    TooManyRequests(std::time::Duration),
    #[error("{0} is unavailable; retry later")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

fn retry_secs(d: &std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The cause of a 500, kept opaque to clients.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn refused(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Refused {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body's `error` object: code, message and the field at fault.
    pub(crate) fn detail(&self) -> ErrorDetail {
        let field = match self {
            ApiError::BadRequest { field, .. } | ApiError::Invalid { field, .. } | ApiError::Refused { field, .. } => {
                Some(field.clone())
            }
            ApiError::TooLarge(_) => Some("body".into()),
            _ => None,
        };
        ErrorDetail {
            code: self.code().into(),
            message: self.to_string(),
            field,
        }
    }

    /// The same error about one item of a list: its field named under `at` (`jobs[3]`).
    pub(crate) fn within(self, at: &str) -> Self {
        let under = |field: String| {
            if field == "body" || field.starts_with(at) {
                at.to_string()
            } else {
                format!("{at}.{field}")
            }
        };
        match self {
            ApiError::Invalid { field, message } => ApiError::Invalid {
                field: under(field),
                message,
            },
            ApiError::Refused { field, message } => ApiError::Refused {
                field: under(field),
                message,
            },
            ApiError::BadRequest { field, message } => ApiError::BadRequest {
                field: under(field),
                message,
            },
            other => other,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) | ApiError::Refused { .. } => "forbidden",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Invalid { .. } => "invalid",
            ApiError::TooLarge(_) => "too_large",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error");
        }
        let mut resp = (self.status_code(), Json(json!({ "error": self.detail() }))).into_response();
        match self {
            ApiError::TooManyRequests(wait) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_secs(&wait).max(1)));
            }
            ApiError::Unauthorized(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

impl From<nightshift_queue::QueueError> for ApiError {
    fn from(e: nightshift_queue::QueueError) -> Self {
        use nightshift_queue::QueueError as Q;
        match e {
            Q::NotFound(_) => ApiError::NotFound("job"),
            Q::InvalidTransition { .. } => ApiError::Conflict(e.to_string()),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "redis unavailable");
                ApiError::Unavailable("the queue")
            }
            e => ApiError::Internal(Box::new(e)),
        }
    }
}

/// A kind's own check (`Kind::check`): the field as the caller named it.
impl From<nightshift_catalog::Invalid> for ApiError {
    fn from((field, message): nightshift_catalog::Invalid) -> Self {
        ApiError::Invalid { field, message }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable("the database")
            }
            sqlx::Error::Database(db) if db.kind() != sqlx::error::ErrorKind::Other => {
                let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
                let violated = Violated {
                    kind: db.kind(),
                    table: pg.and_then(|p| p.table()).unwrap_or_default(),
                    constraint: db.constraint().unwrap_or_default(),
                    column: pg.and_then(|p| p.column()),
                };
                // A race the handler's own checks could not see (two requests at once): the
                // client's answer, not a 500; the constraint is logged for the operator.
                tracing::warn!(
                    table = violated.table,
                    constraint = violated.constraint,
                    "a request broke a database constraint"
                );
                violated.into()
            }
            // Logged once, with the 500 it becomes (`into_response`).
            e => ApiError::Internal(Box::new(e)),
        }
    }
}

/// A database constraint a write broke, as PostgreSQL names it.
struct Violated<'a> {
    kind: sqlx::error::ErrorKind,
    table: &'a str,
    constraint: &'a str,
    column: Option<&'a str>,
}

impl Violated<'_> {
    /// The field at fault: the column PostgreSQL names, or the one in the constraint's default
    /// name (`<table>_<column>_check`, `_fkey`, `_key`; `<table>_pkey` is the id); `body` for a
    /// constraint over several columns.
    fn field(&self) -> String {
        if let Some(column) = self.column {
            return column.to_string();
        }
        let Some(rest) = self
            .constraint
            .strip_prefix(self.table)
            .and_then(|r| r.strip_prefix('_'))
        else {
            return "body".into();
        };
        if rest == "pkey" {
            return "id".into();
        }
        ["_check", "_fkey", "_key"]
            .iter()
            .find_map(|suffix| rest.strip_suffix(suffix))
            .filter(|column| !column.is_empty())
            .map_or_else(|| "body".into(), str::to_string)
    }
}

impl From<Violated<'_>> for ApiError {
    fn from(v: Violated<'_>) -> Self {
        use sqlx::error::ErrorKind;
        let field = v.field();
        match v.kind {
            ErrorKind::UniqueViolation => ApiError::Conflict(format!("`{field}` repeats a value that must be unique")),
            ErrorKind::ForeignKeyViolation => ApiError::invalid(
                field,
                "refers to a record that does not exist, or the record is still referred to",
            ),
            ErrorKind::NotNullViolation => ApiError::invalid(field, "is required"),
            _ => ApiError::invalid(field, "is outside what the record allows"),
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::error::ErrorKind;

    use super::*;

    fn answer(kind: ErrorKind, table: &str, constraint: &str, column: Option<&str>) -> (StatusCode, Option<String>) {
        let e = ApiError::from(Violated {
            kind,
            table,
            constraint,
            column,
        });
        (e.status_code(), e.detail().field)
    }

    #[test]
    fn a_broken_constraint_is_a_409_or_a_422_naming_the_field() {
        assert_eq!(
            answer(ErrorKind::UniqueViolation, "accounts", "accounts_pkey", None),
            (StatusCode::CONFLICT, None)
        );
        assert!(
            ApiError::from(Violated {
                kind: ErrorKind::UniqueViolation,
                table: "accounts",
                constraint: "accounts_pkey",
                column: None
            })
            .to_string()
            .contains("`id`")
        );
        assert_eq!(
            answer(
                ErrorKind::ForeignKeyViolation,
                "reminders",
                "reminders_webhook_id_fkey",
                None
            ),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("webhook_id".into()))
        );
        assert_eq!(
            answer(
                ErrorKind::CheckViolation,
                "recurring_items",
                "recurring_items_amount_check",
                None
            ),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("amount".into()))
        );
        // A check over several columns names no one column.
        assert_eq!(
            answer(
                ErrorKind::CheckViolation,
                "recurring_items",
                "recurring_items_check1",
                None
            ),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("body".into()))
        );
        assert_eq!(
            answer(ErrorKind::NotNullViolation, "users", "", Some("email")),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("email".into()))
        );
        // A constraint not named after its table.
        assert_eq!(
            answer(ErrorKind::CheckViolation, "users", "odd_name", None),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("body".into()))
        );
    }
}
