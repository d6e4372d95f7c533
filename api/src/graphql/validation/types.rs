//! Validation's types: `ValidationReport`, `ValidationIssue`, `IssueSpan` and the enums,
//! with evidence as the story's `RecallHit` — and their twins for the validator subgraph
//! built alone, whose evidence refers to chapters by reference (`ValidatorChapter`, the
//! validator's share of the `Chapter` entity).

use super::ValidatorChapter;
use crate::graphql::ids::to_id;
use crate::graphql::retrieval::{RecallHit, recall_hit};
use async_graphql::{Enum, ID, InputObject, SimpleObject};
use znovel_domain::model as m;

/// What an issue is about.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::IssueKind")]
pub enum IssueKind {
    /// A dead character acts or speaks.
    DeadCharacter,
    /// A character is in two places in one scene.
    Location,
    /// A move faster than the known travel time.
    TravelTime,
    /// An item used or held by someone who no longer has it.
    ItemState,
    /// An injury ignored (a lost hand used).
    Injury,
    /// A relation contradicted (enemies embracing as friends).
    Relationship,
    /// Length far from the chapter's target.
    Length,
    /// A passage repeated from an earlier chapter.
    Repetition,
    /// A term the tenant's content policy bans.
    ContentPolicy,
    /// A rule of the world broken, or anything else a reviewer found.
    WorldRule,
}

/// How serious an issue is.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::Severity")]
pub enum Severity {
    /// A contradiction: the text cannot stand as it is.
    Error,
    /// Probably wrong; worth a look.
    Warning,
    /// For information.
    Info,
}

/// Who found an issue.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::IssueSource")]
pub enum IssueSource {
    /// A rule check: deterministic.
    Rule,
    /// The language-model reviewer: a judgement with a confidence.
    Reviewer,
}

/// The offending text of an issue.
#[derive(SimpleObject)]
#[graphql(shareable)]
pub struct IssueSpan {
    /// Where it starts in the checked text, in Unicode code points (like passage offsets).
    pub start: i32,
    /// Where it ends (exclusive).
    pub end: i32,
    /// Exactly the checked text's characters `start..end`.
    pub text: String,
}

impl From<m::Span> for IssueSpan {
    fn from(s: m::Span) -> Self {
        Self {
            start: s.start,
            end: s.end,
            text: s.text,
        }
    }
}

macro_rules! validation_types {
    ($report:ident, $issue:ident, $hit:ident) => {
        /// A problem found in a text.
        #[derive(SimpleObject)]
        #[graphql(name = "ValidationIssue", shareable)]
        pub struct $issue {
            /// A stable id of the finding (from its kind, span and message): the same in
            /// the stream, the stored report and a later check of the same text;
            /// `generateChapter(kind: REWRITE, fixIssues: [...])` names issues by it.
            pub id: ID,
            /// What it is about.
            pub kind: IssueKind,
            /// How serious it is.
            pub severity: Severity,
            /// What is wrong, for the author.
            pub message: String,
            /// The offending text; null when the issue is about the whole text (length).
            pub span: Option<IssueSpan>,
            /// The earlier records or passages it contradicts, as recall returns them.
            pub evidence: Vec<$hit>,
            /// How to fix it.
            pub suggestion: Option<String>,
            /// Who found it.
            pub source: IssueSource,
            /// For reviewer findings: how sure the reviewer is, 0 to 1.
            pub confidence: Option<f64>,
        }

        impl From<m::ValidationIssue> for $issue {
            fn from(i: m::ValidationIssue) -> Self {
                Self {
                    id: ID(i.id()),
                    kind: i.kind.into(),
                    severity: i.severity.into(),
                    message: i.message,
                    span: i.span.map(IssueSpan::from),
                    evidence: i.evidence.into_iter().map($hit).collect(),
                    suggestion: i.suggestion,
                    source: i.source.into(),
                    confidence: i.confidence,
                }
            }
        }

        /// The result of checking a text against the story so far.
        #[derive(SimpleObject)]
        #[graphql(name = "ValidationReport", shareable)]
        pub struct $report {
            /// The issues, in text order (issues about the whole text last).
            pub issues: Vec<$issue>,
            /// Whether every check ran; false when a part could not be consulted, so the
            /// absence of an issue proves less.
            pub complete: bool,
        }

        impl From<m::ValidationReport> for $report {
            fn from(r: m::ValidationReport) -> Self {
                Self {
                    issues: r.issues.into_iter().map($issue::from).collect(),
                    complete: r.complete,
                }
            }
        }
    };
}

validation_types!(ValidationReport, ValidationIssue, RecallHit);

// The validator subgraph's `RecallHit`: its `chapter` is the validator's `Chapter` entity
// (only its id; a federation router completes the rest from story-gen).
recall_hit!(ValidatorRecallHit, ValidatorChapter, |ctx, h| {
    let _ = ctx;
    Ok(h.chapter_id.map(|c| ValidatorChapter { id: to_id(c) }))
});

validation_types!(
    ValidatorValidationReport,
    ValidatorValidationIssue,
    ValidatorRecallHit
);

/// Input of `checkDraft`.
#[derive(InputObject)]
pub struct CheckDraftInput {
    /// The novel.
    pub novel_id: ID,
    /// The draft, at most 500,000 characters.
    pub text: String,
    /// The draft is checked against the story as of this chapter (chapters 1 to it; 0:
    /// the story bible alone). At most the novel's last chapter.
    pub as_of_chapter: i32,
}

/// Input of `validateChapter`.
#[derive(InputObject)]
pub struct ValidateChapterInput {
    /// The chapter: its current content is checked against the chapters before it.
    pub chapter_id: ID,
}
