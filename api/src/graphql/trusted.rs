//! Trusted documents, for every transport (HTTP, SSE, WebSocket) at once: an async-graphql
//! extension that runs before a request is parsed.
//!
//! - **Automatic persisted queries** (the protocol Apollo clients speak): a request with
//!   `extensions.persistedQuery = {version: 1, sha256Hash}` and no `query` runs the
//!   document known under that hash, or fails with `PERSISTED_QUERY_NOT_FOUND` (message
//!   `PersistedQueryNotFound`, which makes the client send it again with the document). A
//!   request with both is checked (the hash must be the SHA-256 of the exact text, else
//!   `BAD_USER_INPUT`) and its document remembered, in a cache bounded in entries and bytes
//!   (oldest out first; a client whose document was evicted simply sends it again).
//! - **Allow-list mode** (`ZNOVEL_TRUSTED_DOCUMENTS=allowlist`): only documents registered
//!   with `znovel documents register` run, whether sent by hash or as text (the text's
//!   hash must be registered); anything else is `PERSISTED_QUERY_NOT_ALLOWED`, and the
//!   persisted-query cache then only ever holds registered documents. Introspection is a
//!   document like any other: refused unless registered.
//!
//! Requests reach this only once they carry a credential (the transports refuse the others
//! first), so an anonymous client cannot fill the cache.

use super::errors::{ErrorCode, to_gql};
use crate::config::TrustedDocumentsMode;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::OperationType;
use async_graphql::{Request, ServerError, ServerResult};
use serde::Deserialize;
use std::any::TypeId;
use std::sync::{Arc, Mutex};
use znovel_domain::model::DocumentHash;
use znovel_domain::ports::TrustedDocumentRepository;
use znovel_infra::bounded::{Bounded, lock};

/// Most documents the persisted-query cache holds.
const CACHE_ENTRIES: usize = 4_096;
/// Most bytes of document text the persisted-query cache holds.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Request data marking a request that must not change anything (`GET /graphql`): a
/// document found by hash must then not be a mutation.
pub struct ReadOnlyRequest;

/// The trusted-documents policy and the persisted-query cache, shared by every request
/// (cheap to clone). Register it on a schema as an extension.
#[derive(Clone)]
pub struct TrustedDocuments {
    inner: Arc<Inner>,
}

struct Inner {
    mode: TrustedDocumentsMode,
    registry: Option<Arc<dyn TrustedDocumentRepository>>,
    /// Document texts by hash, sized by their text; read with `peek`, so the oldest
    /// goes first.
    cache: Mutex<Bounded<DocumentHash, Arc<str>>>,
}

impl std::fmt::Debug for TrustedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedDocuments")
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl Default for TrustedDocuments {
    /// Persisted queries as a cache, no allow-list.
    fn default() -> Self {
        Self::new(TrustedDocumentsMode::Off, None)
    }
}

impl TrustedDocuments {
    /// The policy `mode`, reading registered documents from `registry` (needed by the
    /// allow-list mode: without one, nothing is registered and nothing runs).
    pub fn new(
        mode: TrustedDocumentsMode,
        registry: Option<Arc<dyn TrustedDocumentRepository>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                mode,
                registry,
                cache: Mutex::new(Bounded::new(CACHE_ENTRIES, CACHE_BYTES)),
            }),
        }
    }

    /// Resolves the persisted query of `request` (if any) into its document and applies
    /// the allow-list; the request is returned ready to parse, or refused.
    pub async fn resolve(&self, mut request: Request) -> ServerResult<Request> {
        let mut verified = None;
        if let Some(value) = request.extensions.remove("persistedQuery") {
            let hash = persisted_hash(value)?;
            if request.query.is_empty() {
                let text = self.lookup(&hash).await?.ok_or_else(|| {
                    refusal(ErrorCode::PersistedQueryNotFound, "PersistedQueryNotFound")
                })?;
                request.query = text.to_string();
                if request.data.contains_key(&TypeId::of::<ReadOnlyRequest>())
                    && is_mutation(&request)
                {
                    return Err(refusal(ErrorCode::BadUserInput, "mutations need POST"));
                }
            } else if DocumentHash::of(&request.query) != hash {
                return Err(refusal(
                    ErrorCode::BadUserInput,
                    "provided sha does not match query",
                ));
            } else if self.inner.mode == TrustedDocumentsMode::Off {
                self.remember(hash.clone(), Arc::from(request.query.as_str()));
            }
            verified = Some(hash);
        }
        if self.inner.mode == TrustedDocumentsMode::Allowlist {
            let hash = verified.unwrap_or_else(|| DocumentHash::of(&request.query));
            if self.lookup(&hash).await?.is_none() {
                return Err(refusal(
                    ErrorCode::PersistedQueryNotAllowed,
                    "this server only runs registered documents, and this one is not registered",
                ));
            }
        }
        Ok(request)
    }

    /// The document known under `hash`: from the cache, else (allow-list mode) from the
    /// registry, which then fills the cache.
    async fn lookup(&self, hash: &DocumentHash) -> ServerResult<Option<Arc<str>>> {
        if let Some(text) = self.cached(hash) {
            return Ok(Some(text));
        }
        let (TrustedDocumentsMode::Allowlist, Some(registry)) =
            (self.inner.mode, &self.inner.registry)
        else {
            return Ok(None);
        };
        let found = registry.find_trusted_document(hash).await.map_err(|e| {
            let err = to_gql(e.into());
            let mut out = ServerError::new(err.message, None);
            out.extensions = err.extensions;
            out
        })?;
        Ok(found.map(|doc| {
            let text: Arc<str> = Arc::from(doc.document);
            self.remember(doc.hash, text.clone());
            text
        }))
    }

    fn cached(&self, hash: &DocumentHash) -> Option<Arc<str>> {
        lock(&self.inner.cache).peek(hash).cloned()
    }

    fn remember(&self, hash: DocumentHash, text: Arc<str>) {
        let bytes = text.len();
        lock(&self.inner.cache).insert(hash, text, bytes);
    }
}

impl ExtensionFactory for TrustedDocuments {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Extension for TrustedDocuments {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = self.resolve(request).await?;
        next.run(ctx, request).await
    }
}

/// `extensions.persistedQuery` as Apollo clients send it.
#[derive(Deserialize)]
struct PersistedQuery {
    version: i64,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

fn persisted_hash(value: async_graphql::Value) -> ServerResult<DocumentHash> {
    let pq: PersistedQuery = async_graphql::from_value(value).map_err(|_| {
        refusal(
            ErrorCode::BadUserInput,
            "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}",
        )
    })?;
    if pq.version != 1 {
        return Err(refusal(
            ErrorCode::BadUserInput,
            "only version 1 of extensions.persistedQuery is supported",
        ));
    }
    DocumentHash::parse(&pq.sha256_hash).ok_or_else(|| {
        refusal(
            ErrorCode::BadUserInput,
            "extensions.persistedQuery.sha256Hash must be 64 hex digits",
        )
    })
}

/// Whether the operation `request` selects is a mutation (a document that does not parse
/// is left to the executor, which reports it).
fn is_mutation(request: &Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let name = request.operation_name.as_deref();
    doc.operations.iter().any(|(n, op)| {
        op.node.ty == OperationType::Mutation && (name.is_none() || n.map(|n| n.as_str()) == name)
    })
}

/// A request-level error with `code`.
fn refusal(code: ErrorCode, message: &str) -> ServerError {
    let mut err = ServerError::new(message, None);
    err.extensions = code.error(message).extensions;
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_bounds() {
        let docs = TrustedDocuments::default();
        for i in 0..(CACHE_ENTRIES + 10) {
            let text = format!("{{ a{i}: __typename }}");
            docs.remember(DocumentHash::of(&text), Arc::from(text.as_str()));
        }
        // Read back (without changing the order) the ones that should stay.
        for i in 10..(CACHE_ENTRIES + 10) {
            let text = format!("{{ a{i}: __typename }}");
            assert!(docs.cached(&DocumentHash::of(&text)).is_some(), "{text}");
        }
        assert_eq!(lock(&docs.inner.cache).len(), CACHE_ENTRIES);
        assert!(
            docs.cached(&DocumentHash::of("{ a0: __typename }"))
                .is_none(),
            "the oldest entry went first"
        );
        let big = "x".repeat(CACHE_BYTES / 2 + 1);
        docs.remember(DocumentHash::of(&big), Arc::from(big.as_str()));
        let big2 = "y".repeat(CACHE_BYTES / 2 + 1);
        docs.remember(DocumentHash::of(&big2), Arc::from(big2.as_str()));
        assert!(lock(&docs.inner.cache).bytes() <= CACHE_BYTES);
        assert!(docs.cached(&DocumentHash::of(&big2)).is_some());
    }
}
