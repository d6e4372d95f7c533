//! The ONE place domain errors become GraphQL errors.
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
//! | `Unavailable` | `UNAVAILABLE` | generic; the cause is logged (warn) |
//! | `Internal` | `INTERNAL` | "internal error"; the cause is logged (error) |
//!
//! Transport limits add `TOO_MANY_SUBSCRIPTIONS` (a subscription past the
//! per-connection cap; the connection and its other subscriptions stay up).
//!
//! Errors raised by async-graphql itself before any resolver runs (parse and validation
//! errors, unknown enum values, depth or complexity limits) get `BAD_USER_INPUT` from
//! [`finalize_response`], which the transports call on every response.

use async_graphql::{ErrorExtensionValues, Response};
use znovel_domain::Error;

/// `extensions.code` of every error the client cannot fix by retrying the same request.
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// `extensions.code` of a subscription refused by the per-connection cap.
pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";

/// Builds a GraphQL error with `message` and `extensions.code = code`.
pub(crate) fn coded(message: impl Into<String>, code: &str) -> async_graphql::Error {
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code);
    async_graphql::Error {
        message: message.into(),
        source: None,
        extensions: Some(ext),
    }
}

/// Maps a domain error to a GraphQL error with a stable `extensions.code`.
pub fn to_gql(e: Error) -> async_graphql::Error {
    let message = e.to_string();
    match e {
        Error::Unauthenticated => coded(message, "UNAUTHENTICATED"),
        Error::Forbidden(_) => coded(message, "FORBIDDEN"),
        Error::NotFound { .. } => coded(message, "NOT_FOUND"),
        Error::InvalidInput { field, .. } => {
            let mut err = coded(message, BAD_USER_INPUT);
            if let Some(ext) = err.extensions.as_mut() {
                ext.set("field", field);
            }
            err
        }
        Error::Conflict(_) => coded(message, "CONFLICT"),
        Error::QuotaExceeded(_) => coded(message, "QUOTA_EXCEEDED"),
        Error::Unavailable(cause) => {
            tracing::warn!(%cause, "a dependency is unavailable");
            coded(
                "the service is temporarily unavailable; retry later",
                "UNAVAILABLE",
            )
        }
        Error::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            coded("internal error", "INTERNAL")
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

/// Gives every error of `resp` that has no `extensions.code` the code `BAD_USER_INPUT`
/// (parse and validation errors, unknown enum values, exceeded depth or complexity), so
/// every error the client sees has a stable code.
pub fn finalize_response(resp: &mut Response) {
    for err in &mut resp.errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", BAD_USER_INPUT);
        }
    }
}
