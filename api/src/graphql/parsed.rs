//! Parsed and validated documents, remembered: an async-graphql extension that keeps the
//! work a repeated request would otherwise do again.
//!
//! async-graphql parses the text of every request and runs every validation rule on it
//! (with the depth and complexity limits and, here, [`super::selections`]'s cap). Clients
//! send the same few documents again and again, so:
//!
//! - **Parsing** is remembered by the document's text: a request whose text was parsed (and
//!   accepted: parser recursion limit, directive count, the selection cap) before gets a
//!   copy of that document. A document is a pure function of its text, so the copy is what
//!   parsing would have produced.
//! - **Validation** is remembered by the text, the operation name *and the variables*: the
//!   rules read variable values (argument types, and the complexity of a field whose cost
//!   depends on an argument), so a request with other variables is validated again. Only
//!   successes are remembered; a refused request is refused each time with the same errors.
//!
//! Both caches are bounded (entries and bytes held, least recently used out first) and
//! hold only documents that passed, from requests that carried a credential (the
//! transports refuse the others before execution), so a client cannot fill them with
//! garbage. Long documents and large variables are not remembered at all.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ServerResult, ValidationResult, Variables};
use std::sync::{Arc, Mutex};
use znovel_infra::bounded::{Bounded, lock};

/// Most documents remembered.
const DOCUMENTS: usize = 512;
/// Most bytes of document text remembered (a parsed document takes some tens of times
/// its text).
const DOCUMENT_BYTES: usize = 1024 * 1024;
/// Longest document remembered; longer ones are parsed each time.
const LONGEST_DOCUMENT: usize = 16 * 1024;
/// Most validation results remembered.
const VALIDATIONS: usize = 4_096;
/// Most bytes of keys (document text, operation name, variables) the validation results
/// hold.
const VALIDATION_BYTES: usize = 2 * 1024 * 1024;
/// Longest variables (as JSON) whose validation is remembered.
const LONGEST_VARIABLES: usize = 512;

/// The caches, shared by every request of a schema (cheap to clone). Register it on a
/// schema as an extension.
#[derive(Clone)]
pub struct ParsedDocuments {
    inner: Arc<Caches>,
}

struct Caches {
    /// Parsed documents by text (sized by their text).
    documents: Mutex<Bounded<Arc<str>, Arc<ExecutableDocument>>>,
    /// Validation results by what they depend on (sized by their key).
    validations: Mutex<Bounded<ValidationKey, ValidationResult>>,
}

/// What a validation result depends on besides the schema: the document, the operation
/// and the variables (as JSON).
#[derive(Clone, PartialEq, Eq, Hash)]
struct ValidationKey {
    query: Arc<str>,
    operation: Option<String>,
    variables: String,
}

impl ValidationKey {
    /// The bytes this key holds.
    fn bytes(&self) -> usize {
        self.query.len() + self.operation.as_ref().map_or(0, String::len) + self.variables.len()
    }
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self {
            inner: Arc::new(Caches {
                documents: Mutex::new(Bounded::new(DOCUMENTS, DOCUMENT_BYTES)),
                validations: Mutex::new(Bounded::new(VALIDATIONS, VALIDATION_BYTES)),
            }),
        }
    }
}

impl ParsedDocuments {
    /// The parsed document of `query`, if remembered.
    fn document(&self, query: &str) -> Option<ExecutableDocument> {
        let doc = lock(&self.inner.documents).get(query).cloned();
        // Copied outside the lock: the executor takes the document apart.
        doc.map(|d| ExecutableDocument::clone(&d))
    }

    /// Remembers `doc` as the parse of `query` (if it is short enough).
    fn remember_document(&self, query: &str, doc: &ExecutableDocument) {
        if query.len() > LONGEST_DOCUMENT {
            return;
        }
        let doc = Arc::new(doc.clone());
        lock(&self.inner.documents).insert(Arc::from(query), doc, query.len());
    }

    /// The validation result remembered for `key`.
    fn validation(&self, key: &ValidationKey) -> Option<ValidationResult> {
        lock(&self.inner.validations).get(key).copied()
    }

    /// Remembers `result` for `key`.
    fn remember_validation(&self, key: ValidationKey, result: ValidationResult) {
        let bytes = key.bytes();
        lock(&self.inner.validations).insert(key, result, bytes);
    }
}

impl ExtensionFactory for ParsedDocuments {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            caches: self.clone(),
            key: Mutex::new(None),
        })
    }
}

/// The extension of one request: the validation key, known once the request is prepared
/// (a persisted query's text is only known then).
struct PerRequest {
    caches: ParsedDocuments,
    key: Mutex<Option<ValidationKey>>,
}

impl PerRequest {
    fn key(&self) -> Option<ValidationKey> {
        lock(&self.key).clone()
    }
}

/// The variables as JSON, if short enough to key a validation by.
fn variables_key(variables: &Variables) -> Option<String> {
    if variables.is_empty() {
        return Some(String::new());
    }
    let json = serde_json::to_string(variables).ok()?;
    (json.len() <= LONGEST_VARIABLES).then_some(json)
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        if request.query.len() <= LONGEST_DOCUMENT
            && request.uploads.is_empty()
            && let Some(variables) = variables_key(&request.variables)
        {
            *lock(&self.key) = Some(ValidationKey {
                query: Arc::from(request.query.as_str()),
                operation: request.operation_name.clone(),
                variables,
            });
        }
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(doc) = self.caches.document(query) {
            return Ok(doc);
        }
        let doc = next.run(ctx, query, variables).await?;
        self.caches.remember_document(query, &doc);
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let Some(key) = self.key() else {
            return next.run(ctx).await;
        };
        if let Some(result) = self.caches.validation(&key) {
            return Ok(result);
        }
        let result = next.run(ctx).await?;
        self.caches.remember_validation(key, result);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        DOCUMENT_BYTES, DOCUMENTS, LONGEST_DOCUMENT, ParsedDocuments, VALIDATION_BYTES,
        VALIDATIONS, ValidationKey, lock,
    };
    use async_graphql::ValidationResult;
    use async_graphql::parser::parse_query;
    use std::sync::Arc;

    #[test]
    fn the_caches_stay_within_their_bounds() {
        let cache = ParsedDocuments::default();
        for i in 0..DOCUMENTS + 100 {
            let q = format!("{{ f{i} }}");
            cache.remember_document(&q, &parse_query(&q).unwrap());
        }
        assert_eq!(lock(&cache.inner.documents).len(), DOCUMENTS);
        // The oldest went first; the newest are there.
        assert!(cache.document("{ f0 }").is_none());
        assert!(
            cache
                .document(&format!("{{ f{} }}", DOCUMENTS + 99))
                .is_some()
        );

        // A document too long to remember is not.
        let long = format!("{{ {} }}", "a ".repeat(LONGEST_DOCUMENT / 2 + 1));
        cache.remember_document(&long, &parse_query(&long).unwrap());
        assert!(cache.document(&long).is_none());

        // The bytes of text held stay under their bound.
        let cache = ParsedDocuments::default();
        let field = "b ".repeat(LONGEST_DOCUMENT / 2 - 8);
        for i in 0..DOCUMENT_BYTES / LONGEST_DOCUMENT + 10 {
            let q = format!("{{ c{i} {field} }}");
            cache.remember_document(&q, &parse_query(&q).unwrap());
        }
        let held = lock(&cache.inner.documents).bytes();
        assert!(held <= DOCUMENT_BYTES, "{held} bytes");
        assert!(lock(&cache.inner.documents).len() < DOCUMENTS);

        // Validation results: bounded in entries, and in the bytes of their keys.
        let result = ValidationResult {
            cache_control: Default::default(),
            complexity: 1,
            depth: 1,
        };
        let key = |query: String, i: usize| ValidationKey {
            query: Arc::from(query),
            operation: None,
            variables: format!("{{\"n\":{i}}}"),
        };
        for i in 0..VALIDATIONS + 10 {
            cache.remember_validation(key("{ a }".into(), i), result);
        }
        assert_eq!(lock(&cache.inner.validations).len(), VALIDATIONS);
        assert!(cache.validation(&key("{ a }".into(), 0)).is_none());
        assert!(
            cache
                .validation(&key("{ a }".into(), VALIDATIONS + 9))
                .is_some()
        );
        let long = format!("{{ {} }}", "a ".repeat(LONGEST_DOCUMENT / 2 - 4));
        for i in 0..VALIDATION_BYTES / LONGEST_DOCUMENT + 10 {
            cache.remember_validation(key(long.clone(), i), result);
        }
        let held = lock(&cache.inner.validations).bytes();
        assert!(held <= VALIDATION_BYTES, "{held} bytes");
    }
}
