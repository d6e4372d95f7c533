//! Errors. `StoreError` is the contract of every repository port; `Error` is what the
//! use-case services return, and what the API maps (in one place) to GraphQL error codes.

/// What a repository port may fail with. Adapters translate their driver errors into it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist in the caller's tenant (or at all: indistinguishable).
    #[error("not found")]
    NotFound,
    /// A uniqueness or concurrency constraint rejected the write; nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store could not be reached (pool timeout, connection refused).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the message is for logs, never for clients.
    #[error("store error: {0}")]
    Internal(String),
}

/// The error of every use-case service operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid credentials were presented.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is authenticated but its role or scopes do not allow the operation.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The named resource does not exist in the caller's tenant.
    #[error("{resource} not found")]
    NotFound {
        /// Which kind of resource, e.g. `novel`.
        resource: &'static str,
    },
    /// An input field is invalid; nothing was written.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The input field, as the client named it (camelCase).
        field: String,
        /// Why it is invalid.
        message: String,
    },
    /// The write conflicts with existing data (duplicate, stale version); nothing written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A tenant quota would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// A rate limit was reached; the same request succeeds after `retry_after_secs`.
    #[error("rate limited: {what}; retry in {retry_after_secs} s")]
    RateLimited {
        /// Which limit, e.g. `requests per minute for this API key (600)`.
        what: String,
        /// Seconds until the request would be allowed (at least 1).
        retry_after_secs: u64,
    },
    /// A dependency is unreachable; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details are logged, never shown to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Turns a repository result into a service result, naming the resource on `NotFound`.
pub trait StoreResultExt<T> {
    /// Maps the error, naming `resource` when the store says `NotFound`.
    fn or_not_found(self, resource: &'static str) -> Result<T, Error>;
}

impl<T> StoreResultExt<T> for Result<T, StoreError> {
    fn or_not_found(self, resource: &'static str) -> Result<T, Error> {
        self.map_err(|e| match e {
            StoreError::NotFound => Error::NotFound { resource },
            other => Error::from(other),
        })
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::NotFound {
                resource: "resource",
            },
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Unavailable(m) => Error::Unavailable(m),
            StoreError::Internal(m) => Error::Internal(m),
        }
    }
}
