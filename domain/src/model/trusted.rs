//! Trusted documents: GraphQL documents registered ahead of time, known by the SHA-256 of
//! their exact text (the hash Apollo's persisted queries send).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The lower-case hex SHA-256 of a document's exact text (64 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentHash(String);

impl DocumentHash {
    /// The hash of `text`, byte for byte (no normalisation: a client hashes what it sends).
    pub fn of(text: &str) -> Self {
        let digest = Sha256::digest(text.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        Self(hex)
    }

    /// Parses a hash as clients send it: 64 hex digits (upper case is accepted and
    /// lowered). `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(s.to_ascii_lowercase()))
    }

    /// The 64 lower-case hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DocumentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDocument {
    /// The hash of [`Self::document`].
    pub hash: DocumentHash,
    /// The document's exact text.
    pub document: String,
    /// The name of its operation, when it has exactly one named operation.
    pub operation_name: Option<String>,
    /// When it was first registered.
    pub registered_at: DateTime<Utc>,
}

impl TrustedDocument {
    /// A document registered at `at`, its hash computed from `document`.
    pub fn new(document: String, operation_name: Option<String>, at: DateTime<Utc>) -> Self {
        Self {
            hash: DocumentHash::of(&document),
            document,
            operation_name,
            registered_at: at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DocumentHash;

    #[test]
    fn hashes_are_sha256_hex_and_parse_strictly() {
        // sha256("{ __typename }"), as `printf '{ __typename }' | sha256sum` prints it.
        let h = DocumentHash::of("{ __typename }");
        assert_eq!(h.as_str().len(), 64);
        assert_eq!(DocumentHash::parse(&h.as_str().to_uppercase()), Some(h));
        assert_eq!(DocumentHash::parse("abc"), None);
        assert_eq!(DocumentHash::parse(&"g".repeat(64)), None);
        assert_eq!(
            DocumentHash::of("").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
