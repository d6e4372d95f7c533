//! Continuity checking: the issues a draft or a chapter has against the story so far,
//! and the report that collects them.

use super::{RecallHit, str_enum};

str_enum! {
    /// What an issue is about.
    IssueKind {
        /// A dead character acts or speaks.
        DeadCharacter = "DEAD_CHARACTER",
        /// A character is in two places in one scene.
        Location = "LOCATION",
        /// A move faster than the known travel time.
        TravelTime = "TRAVEL_TIME",
        /// An item used or held by someone who no longer has it.
        ItemState = "ITEM_STATE",
        /// An injury ignored (a lost hand used).
        Injury = "INJURY",
        /// A relation contradicted (enemies embracing as friends).
        Relationship = "RELATIONSHIP",
        /// Length far from the chapter's target.
        Length = "LENGTH",
        /// A passage repeated from an earlier chapter.
        Repetition = "REPETITION",
        /// A term the tenant's content policy bans.
        ContentPolicy = "CONTENT_POLICY",
        /// A rule of the world broken, the timeline contradicted, or anything else a
        /// reviewer found.
        WorldRule = "WORLD_RULE",
    }
}

str_enum! {
    /// How serious an issue is.
    Severity {
        /// A contradiction: the text cannot stand as it is.
        Error = "ERROR",
        /// Probably wrong; worth a look.
        Warning = "WARNING",
        /// For information.
        Info = "INFO",
    }
}

str_enum! {
    /// Who found an issue.
    IssueSource {
        /// A rule check: deterministic.
        Rule = "RULE",
        /// The language-model reviewer: a judgement with a confidence.
        Reviewer = "REVIEWER",
    }
}

str_enum! {
    /// What a tenant does with a generated chapter that has an issue of severity ERROR.
    ValidationFailMode {
        /// Store it as written (in review) with its report: the author decides.
        Open = "OPEN",
        /// Keep it as a draft until the author fixes or accepts it.
        Closed = "CLOSED",
    }
}

/// The offending text: characters `start..end` (Unicode code points) of the checked
/// text, the same unit as passage offsets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    /// Start offset (code points).
    pub start: i32,
    /// End offset, exclusive.
    pub end: i32,
    /// Exactly the checked text's characters `start..end`.
    pub text: String,
}

/// One problem found in a text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ValidationIssue {
    /// What it is about.
    pub kind: IssueKind,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong, for the author.
    pub message: String,
    /// The offending text, when the issue is about a part of it (length is not).
    pub span: Option<Span>,
    /// The earlier records or passages it contradicts.
    pub evidence: Vec<RecallHit>,
    /// How to fix it.
    pub suggestion: Option<String>,
    /// Who found it.
    pub source: IssueSource,
    /// For reviewer findings: how sure the reviewer is, 0..=1.
    pub confidence: Option<f64>,
}

/// The result of checking a text.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ValidationReport {
    /// The issues, in text order (issues without a span last).
    pub issues: Vec<ValidationIssue>,
    /// Whether every check ran: `false` when a part (the reviewer, the story's memory)
    /// could not be consulted, so the absence of an issue proves less.
    pub complete: bool,
}

impl ValidationIssue {
    /// A stable id: the first 16 hex digits of the SHA-256 of the kind, the span's
    /// offsets and the message. The same finding in the same text always has the same id
    /// (in the stream, the stored report and a later check of an unchanged version), so a
    /// rewrite can name the issues it is to fix.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.kind.as_str().as_bytes());
        h.update([0]);
        if let Some(s) = &self.span {
            h.update(s.start.to_le_bytes());
            h.update(s.end.to_le_bytes());
        }
        h.update([0]);
        h.update(self.message.as_bytes());
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl ValidationReport {
    /// Whether the text passed: no issue of severity `ERROR`.
    pub fn passed(&self) -> bool {
        !self.issues.iter().any(|i| i.severity == Severity::Error)
    }
}

/// The stored report of one version of a chapter.
#[derive(Debug, Clone, PartialEq)]
pub struct ChapterValidation {
    /// Identity.
    pub id: uuid::Uuid,
    /// Owning tenant.
    pub tenant_id: crate::ids::TenantId,
    /// The chapter.
    pub chapter_id: crate::ids::ChapterId,
    /// The version of the chapter that was checked.
    pub chapter_version: i32,
    /// The report.
    pub report: ValidationReport,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
}
