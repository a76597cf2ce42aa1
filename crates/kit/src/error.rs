//! The one error type every subgraph returns, and its mapping to GraphQL errors.
//!
//! Client errors carry a safe message and a stable `extensions.code`; internal errors are logged with
//! their cause (inside the request's span, so with its request id) and reach the client only as
//! "internal server error".

use async_graphql::ErrorExtensions;

/// Stable error codes, sent as `extensions.code`.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
}

/// A domain error. Cheap to clone (DataLoader hands one error to every waiting key).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    BadUserInput { message: String, field: Option<String> },
    #[error("{0}")]
    Conflict(String),
    /// Refused for a reason with its own code (the files subgraph's `FILE_TOO_LARGE`,
    /// `QUOTA_EXCEEDED`, ...): the client can act on the code, not only read the message.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("internal server error")]
    Internal(#[source] std::sync::Arc<anyhow::Error>),
}

/// The result of domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bad input on a named input field.
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadUserInput { message: message.into(), field: Some(field.to_owned()) }
    }

    /// An internal failure; its cause is logged, never shown.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(std::sync::Arc::new(cause.into()))
    }

    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => code::UNAUTHENTICATED,
            Self::Forbidden(_) => code::FORBIDDEN,
            Self::NotFound(_) => code::NOT_FOUND,
            Self::BadUserInput { .. } => code::BAD_USER_INPUT,
            Self::Conflict(_) => code::CONFLICT,
            Self::Refused { code, .. } => code,
            Self::RateLimited { .. } => code::RATE_LIMITED,
            Self::Internal(_) => code::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::internal(err)
    }
}

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        if let Error::Internal(cause) = &err {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let code = err.code();
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
            ext.set("code", code);
            match &err {
                Error::BadUserInput { field: Some(field), .. } => ext.set("field", field.as_str()),
                Error::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
                _ => {}
            }
        })
    }
}

/// The name of the violated unique constraint, if `err` is a unique violation. Stores map constraint
/// names (never message texts) to [`Error::Conflict`].
pub fn unique_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extensions(err: Error) -> (String, serde_json::Value) {
        let gql: async_graphql::Error = err.into();
        let json = serde_json::to_value(gql.extensions).expect("extensions serialize");
        (gql.message, json)
    }

    #[test]
    fn every_variant_has_its_code() {
        let cases = [
            (Error::Unauthenticated("sign in".into()), "UNAUTHENTICATED"),
            (Error::Forbidden("no".into()), "FORBIDDEN"),
            (Error::NotFound("no such organization".into()), "NOT_FOUND"),
            (Error::bad_input("name", "too long"), "BAD_USER_INPUT"),
            (Error::Conflict("taken".into()), "CONFLICT"),
            (Error::Refused { code: "QUOTA_EXCEEDED", message: "full".into() }, "QUOTA_EXCEEDED"),
            (Error::RateLimited { retry_after_secs: 3 }, "RATE_LIMITED"),
        ];
        for (err, code) in cases {
            let (_, ext) = extensions(err);
            assert_eq!(ext["code"], code);
        }
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let (message, ext) = extensions(Error::internal(anyhow::anyhow!("password=hunter2 at db:5432")));
        assert_eq!(message, "internal server error");
        assert_eq!(ext, serde_json::json!({ "code": "INTERNAL_SERVER_ERROR" }));
    }

    #[test]
    fn bad_input_names_the_field_and_rate_limit_the_delay() {
        let (_, ext) = extensions(Error::bad_input("slug", "taken"));
        assert_eq!(ext["field"], "slug");
        let (_, ext) = extensions(Error::RateLimited { retry_after_secs: 7 });
        assert_eq!(ext["retryAfter"], 7);
    }
}
