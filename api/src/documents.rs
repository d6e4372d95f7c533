//! Registering trusted documents (`znovel documents register`): reading `.graphql` files,
//! checking that each parses, and storing them by the SHA-256 of their exact text.

use anyhow::Context;
use async_graphql::parser::parse_query;
use std::path::{Path, PathBuf};
use znovel_domain::model::TrustedDocument;
use znovel_domain::ports::TrustedDocumentRepository;
use znovel_domain::services::now;

/// Reads every file as one document; fails on the first file that cannot be read or does
/// not parse as a GraphQL executable document (so nothing is registered).
pub fn read_files(files: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, TrustedDocument)>> {
    let at = now();
    files
        .iter()
        .map(|file| Ok((file.clone(), read_one(file, at)?)))
        .collect()
}

fn read_one(file: &Path, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<TrustedDocument> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = parse_query(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a GraphQL document: {e}", file.display()))?;
    // The name, when the document has exactly one named operation.
    let mut names = doc.operations.iter().map(|(name, _)| name);
    let name = match (names.next(), names.next()) {
        (Some(Some(n)), None) => Some(n.to_string()),
        _ => None,
    };
    Ok(TrustedDocument::new(text, name, at))
}

/// Registers the documents (one already registered is left as it is) and returns them.
pub async fn register(
    registry: &dyn TrustedDocumentRepository,
    docs: Vec<(PathBuf, TrustedDocument)>,
) -> anyhow::Result<Vec<(PathBuf, TrustedDocument)>> {
    for (file, doc) in &docs {
        registry
            .register_trusted_document(doc)
            .await
            .with_context(|| format!("registering {}", file.display()))?;
    }
    Ok(docs)
}
