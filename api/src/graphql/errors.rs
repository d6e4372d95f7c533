//! The ONE place domain errors become GraphQL errors, and the ONE list of error codes
//! ([`ErrorCode`]) every transport uses (HTTP, SSE, WebSocket, metrics labels).
//!
//! Every error a client sees carries a stable `extensions.code`:
//!
//! | domain error | code | message |
//! |---|---|---|
//! | `Unauthenticated` | `UNAUTHENTICATED` | "authentication required" |
//! | `Forbidden` | `FORBIDDEN` | why |
//! | `NotFound` | `NOT_FOUND` | "novel not found" |
//! | `InvalidInput` | `BAD_USER_INPUT` (+ `extensions.field`) | "invalid title: …" |
//! | `Conflict` | `CONFLICT` | what conflicts |
//! | `QuotaExceeded` | `QUOTA_EXCEEDED` | which quota |
//! | `RateLimited` | `RATE_LIMITED` (+ `extensions.retryAfterSeconds`) | which limit |
//! | `Unavailable` | `UNAVAILABLE` | generic; the cause is logged (warn) |
//! | `Internal` | `INTERNAL` | "internal error"; the cause is logged (error) |
//!
//! Transport limits add `TOO_MANY_SUBSCRIPTIONS` (a subscription past the
//! per-connection cap; the connection and its other subscriptions stay up). Trusted
//! documents add `PERSISTED_QUERY_NOT_FOUND` and `PERSISTED_QUERY_NOT_ALLOWED` (see
//! [`super::trusted`]).
//!
//! Errors raised by async-graphql itself before any resolver runs (parse and validation
//! errors, unknown enum values, depth or complexity limits) get `BAD_USER_INPUT` from
//! [`finalize_response`], which the transports call on every response.

use async_graphql::{ErrorExtensionValues, Response};
use znovel_domain::Error;

/// Every `extensions.code` the API returns. Transports and metrics use this enum, never
/// string literals, so the list in the README and the codes on the wire cannot drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No valid credential was presented.
    Unauthenticated,
    /// The credential's role or scopes do not allow the operation.
    Forbidden,
    /// The object does not exist in the caller's tenant.
    NotFound,
    /// The request or one of its inputs is invalid; retrying it unchanged cannot help.
    BadUserInput,
    /// The change conflicts with existing data.
    Conflict,
    /// A tenant quota would be exceeded.
    QuotaExceeded,
    /// A rate limit was reached; `extensions.retryAfterSeconds` says when to retry.
    RateLimited,
    /// A subscription past the per-connection cap.
    TooManySubscriptions,
    /// An automatic persisted query sent by hash only, and the hash is unknown: send the
    /// hash with the full document (the message is Apollo's `PersistedQueryNotFound`).
    PersistedQueryNotFound,
    /// Trusted-documents allow-list mode: the document is not registered.
    PersistedQueryNotAllowed,
    /// A dependency is unreachable; retry later.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order the README lists them.
    pub const ALL: &[ErrorCode] = &[
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::BadUserInput,
        Self::Conflict,
        Self::QuotaExceeded,
        Self::RateLimited,
        Self::TooManySubscriptions,
        Self::PersistedQueryNotFound,
        Self::PersistedQueryNotAllowed,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as it appears in `extensions.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::RateLimited => "RATE_LIMITED",
            Self::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotAllowed => "PERSISTED_QUERY_NOT_ALLOWED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// The code named `s`, if it is one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The code of a response error (`INTERNAL` when it carries none or an unknown one,
    /// which keeps metric labels bounded).
    pub fn of(err: &async_graphql::ServerError) -> Self {
        err.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .and_then(|v| match v {
                async_graphql::Value::String(s) => Self::parse(s),
                async_graphql::Value::Enum(s) => Self::parse(s.as_str()),
                _ => None,
            })
            .unwrap_or(Self::Internal)
    }

    /// A GraphQL error with `message` and this code.
    pub fn error(self, message: impl Into<String>) -> async_graphql::Error {
        let mut ext = ErrorExtensionValues::default();
        ext.set("code", self.as_str());
        async_graphql::Error {
            message: message.into(),
            source: None,
            extensions: Some(ext),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maps a domain error to a GraphQL error with a stable `extensions.code`.
pub fn to_gql(e: Error) -> async_graphql::Error {
    let message = e.to_string();
    match e {
        Error::Unauthenticated => ErrorCode::Unauthenticated.error(message),
        Error::Forbidden(_) => ErrorCode::Forbidden.error(message),
        Error::NotFound { .. } => ErrorCode::NotFound.error(message),
        Error::InvalidInput { field, .. } => {
            let mut err = ErrorCode::BadUserInput.error(message);
            if let Some(ext) = err.extensions.as_mut() {
                ext.set("field", field);
            }
            err
        }
        Error::Conflict(_) => ErrorCode::Conflict.error(message),
        Error::QuotaExceeded(_) => ErrorCode::QuotaExceeded.error(message),
        Error::RateLimited {
            retry_after_secs, ..
        } => {
            let mut err = ErrorCode::RateLimited.error(message);
            if let Some(ext) = err.extensions.as_mut() {
                ext.set("retryAfterSeconds", retry_after_secs);
            }
            err
        }
        Error::Unavailable(cause) => {
            tracing::warn!(%cause, "a dependency is unavailable");
            ErrorCode::Unavailable.error("the service is temporarily unavailable; retry later")
        }
        Error::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            ErrorCode::Internal.error("internal error")
        }
    }
}

/// `.gql()`: maps the domain error of a service result with [`to_gql`].
pub trait ResultExt<T> {
    /// The result with its error mapped to a GraphQL error.
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> ResultExt<T> for Result<T, Error> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_gql)
    }
}

/// A response carrying only `error` (a request refused before it runs), codes finalized.
pub fn error_response(error: async_graphql::Error) -> Response {
    let mut server = async_graphql::ServerError::new(error.message, None);
    server.extensions = error.extensions;
    let mut resp = Response::from_errors(vec![server]);
    finalize_response(&mut resp);
    resp
}

/// Gives every error of `resp` that has no `extensions.code` the code `BAD_USER_INPUT`
/// (parse and validation errors, unknown enum values, exceeded depth or complexity), so
/// every error the client sees has a stable code.
pub fn finalize_response(resp: &mut Response) {
    for err in &mut resp.errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", ErrorCode::BadUserInput.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_round_trips_and_the_readme_lists_it() {
        let readme = include_str!("../../../README.md");
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!(
                readme.contains(&format!("`{}`", code.as_str())),
                "README does not list {code}"
            );
        }
        assert_eq!(ErrorCode::parse("SOMETHING_ELSE"), None);
    }
}
