//! The language-model reviewer: what the rules cannot see (a world rule broken, a
//! timeline bent, a motive forgotten), judged by a model given the story's recalled
//! evidence and answering under a JSON schema.
//!
//! Pure: this module builds the request and reads the answer; calling the model is the
//! validation service's. A finding becomes an issue only when it can be checked:
//! - its quote is found in the checked text (the span is where; a paraphrase is dropped);
//! - its confidence is at least [`MIN_CONFIDENCE`];
//! - it does not overlap a rule's issue: a rule is exact and always wins;
//! - it is at most a `WARNING`: a judgement never fails a chapter closed or stops a batch
//!   by itself, the rules do.
//!
//! Findings are marked `source: REVIEWER` with the model's confidence; the evidence they
//! cite is the recalled records and passages they were given, by number.

use super::{Story, evidence};
use crate::model::{IssueKind, IssueSource, RecallHit, Severity, Span, ValidationIssue};
use crate::ports::{ChatMessage, ChatRole};
use serde::Deserialize;
use serde_json::json;

/// Findings under this confidence are dropped.
pub const MIN_CONFIDENCE: f64 = 0.5;
/// Most findings the model may return.
pub const MAX_FINDINGS: usize = 8;
/// Most pieces of evidence the model is given.
pub const MAX_EVIDENCE: usize = 24;
/// Most earlier passages among them.
const MAX_PASSAGES: usize = 8;
/// Longest string the model may return in one field.
const MAX_FIELD: usize = 400;

/// The kinds a reviewer may report (the surface checks — length, repetition, banned
/// terms — are the rules' alone).
const KINDS: &[IssueKind] = &[
    IssueKind::DeadCharacter,
    IssueKind::Location,
    IssueKind::TravelTime,
    IssueKind::ItemState,
    IssueKind::Injury,
    IssueKind::Relationship,
    IssueKind::WorldRule,
];

/// The JSON schema the answer must follow.
pub fn schema() -> serde_json::Value {
    let s = || json!({ "type": "string", "maxLength": MAX_FIELD });
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
    json!({
        "type": "object",
        "properties": {
            "findings": {
                "type": "array",
                "maxItems": MAX_FINDINGS,
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": { "type": "string", "enum": kinds },
                        "quote": s(),
                        "message": s(),
                        "suggestion": s(),
                        "evidence": { "type": "array", "items": { "type": "integer" }, "maxItems": 4 },
                        "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
                    },
                    "required": ["kind", "quote", "message", "suggestion", "evidence", "confidence"],
                    "additionalProperties": false,
                },
            },
        },
        "required": ["findings"],
        "additionalProperties": false,
    })
}

/// The model's answer, as the schema shapes it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Answer {
    /// What it found.
    pub findings: Vec<Finding>,
}

/// One finding of the answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Finding {
    /// One of the issue kinds (an unknown kind counts as `WORLD_RULE`).
    pub kind: String,
    /// The offending words, copied from the chapter.
    pub quote: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub suggestion: String,
    /// Numbers of the evidence items it contradicts (1-based, as in the prompt).
    pub evidence: Vec<i64>,
    /// How sure the model is, 0..=1.
    pub confidence: f64,
}

/// What became of an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    /// The findings kept, as issues.
    pub issues: Vec<ValidationIssue>,
    /// Findings dropped because their quote is not in the text.
    pub unlocated: usize,
    /// Findings dropped under [`MIN_CONFIDENCE`].
    pub unsure: usize,
    /// Findings dropped because a rule's issue covers the same words.
    pub covered: usize,
}

/// The evidence the reviewer is given: the latest state of every entity the text names
/// (and of the places and holders those states point to), the relations among them, and
/// the most recent earlier passages that name them — at most [`MAX_EVIDENCE`] items.
pub fn evidence(story: &Story, text: &str) -> Vec<RecallHit> {
    let named: Vec<_> = crate::services::recall::named_entities(&story.entities, text)
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut out = Vec::new();
    let mut states: Vec<_> = story.states.iter().collect();
    // Named entities first, then what their states point to.
    states.sort_by_key(|s| !named.contains(&s.entity_id));
    out.extend(states.into_iter().map(|s| evidence::state(story, s)));
    out.extend(
        story
            .relations
            .iter()
            .filter(|r| named.contains(&r.source_id) || named.contains(&r.target_id))
            .map(|r| evidence::relation(story, r)),
    );
    out.truncate(MAX_EVIDENCE - MAX_PASSAGES.min(MAX_EVIDENCE));
    let names: Vec<String> = story
        .entities
        .iter()
        .filter(|e| named.contains(&e.id))
        .flat_map(|e| std::iter::once(&e.name).chain(&e.aliases))
        .map(|n| n.to_lowercase())
        .filter(|n| n.chars().count() >= 2)
        .collect();
    let mut passages: Vec<_> = story
        .passages
        .iter()
        .filter(|p| {
            let lower = p.text.to_lowercase();
            names.iter().any(|n| lower.contains(n.as_str()))
        })
        .collect();
    passages.sort_by_key(|p| std::cmp::Reverse((p.chapter_seq, p.ordinal)));
    out.extend(
        passages
            .into_iter()
            .take(MAX_PASSAGES)
            .map(evidence::passage),
    );
    out
}

/// The request: instructions, the numbered evidence, what the rules already found (so
/// the model does not repeat it), and the text (cut to about `max_text_tokens` tokens).
pub fn prompt(
    text: &str,
    evidence: &[RecallHit],
    rule_issues: &[ValidationIssue],
    max_text_tokens: usize,
) -> Vec<ChatMessage> {
    let system = "You are a continuity editor for a long novel. You compare a new chapter \
        with what the story established before it (the numbered evidence) and report only \
        real contradictions: a dead character acting, someone in two places at once, an \
        item used by someone who no longer has it, an injury ignored, a relation \
        contradicted, a rule of the world broken, events out of order. Memories, \
        flashbacks, dreams, mourning, lies and characters' mistaken beliefs are not \
        contradictions. For each finding copy the offending words exactly from the \
        chapter into `quote`, cite the evidence numbers it contradicts, and give your \
        confidence from 0 to 1. Answer with JSON only; an empty list when nothing is wrong.";
    let mut user = String::from("Evidence (what the story established before this chapter):\n");
    if evidence.is_empty() {
        user.push_str("(none)\n");
    }
    for (i, e) in evidence.iter().enumerate() {
        let when = e
            .chapter_seq
            .map(|s| format!("chapter {s}"))
            .unwrap_or_else(|| "story bible".into());
        let t: String = e.text.chars().take(600).collect();
        user.push_str(&format!("[{}] ({when}) {}\n", i + 1, t.trim()));
    }
    if !rule_issues.is_empty() {
        user.push_str("\nAlready reported (do not repeat):\n");
        for i in rule_issues.iter().take(20) {
            user.push_str(&format!("- {}\n", i.message));
        }
    }
    user.push_str("\nNew chapter:\n");
    user.push_str(super::super::extract::excerpt(text, max_text_tokens));
    vec![
        ChatMessage::new(ChatRole::System, system),
        ChatMessage::new(ChatRole::User, user),
    ]
}

/// Reads the model's answer into issues of `text`. `Err` when the answer is not the
/// schema's JSON (the report is then incomplete; the rules' issues stand).
pub fn parse(
    answer: &str,
    text: &str,
    evidence: &[RecallHit],
    rule_issues: &[ValidationIssue],
) -> Result<Review, String> {
    let answer: Answer = super::super::extract::parse_json_answer(answer)?;
    let mut review = Review::default();
    for f in answer.findings.into_iter().take(MAX_FINDINGS) {
        let confidence = if f.confidence.is_finite() {
            f.confidence.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if confidence < MIN_CONFIDENCE {
            review.unsure += 1;
            continue;
        }
        let Some((s, e)) = super::super::extract::locate(text, &f.quote) else {
            review.unlocated += 1;
            continue;
        };
        let overlaps =
            |span: &Option<Span>| span.as_ref().is_some_and(|r| r.start < e && s < r.end);
        if rule_issues.iter().any(|i| overlaps(&i.span))
            || review.issues.iter().any(|i| overlaps(&i.span))
        {
            review.covered += 1;
            continue;
        }
        let kind = KINDS
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(f.kind.trim()))
            .unwrap_or(IssueKind::WorldRule);
        let cited = f
            .evidence
            .iter()
            .filter_map(|&n| usize::try_from(n - 1).ok())
            .filter_map(|n| evidence.get(n).cloned())
            .fold(Vec::<RecallHit>::new(), |mut acc, h| {
                if !acc.iter().any(|x| x.record_id == h.record_id) {
                    acc.push(h);
                }
                acc
            });
        let message = if f.message.trim().is_empty() {
            format!("the reviewer flags \"{}\"", f.quote.trim())
        } else {
            f.message.trim().chars().take(MAX_FIELD).collect()
        };
        review.issues.push(ValidationIssue {
            kind,
            // A judgement is a warning: only the rules fail a chapter.
            severity: if confidence >= 0.8 {
                Severity::Warning
            } else {
                Severity::Info
            },
            message,
            span: Some(Span {
                start: s,
                end: e,
                text: text
                    .chars()
                    .skip(s as usize)
                    .take((e - s) as usize)
                    .collect(),
            }),
            evidence: cited,
            suggestion: Some(f.suggestion.trim().chars().take(MAX_FIELD).collect())
                .filter(|s: &String| !s.is_empty()),
            source: IssueSource::Reviewer,
            confidence: Some(confidence),
        });
    }
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemoryKind;

    fn hit(text: &str, seq: i32) -> RecallHit {
        RecallHit {
            record_id: uuid::Uuid::now_v7(),
            kind: MemoryKind::Passage,
            text: text.into(),
            score: 1.0,
            chapter_id: None,
            chapter_seq: Some(seq),
            start_offset: None,
            end_offset: None,
        }
    }

    fn rule(start: i32, end: i32) -> ValidationIssue {
        ValidationIssue {
            kind: IssueKind::DeadCharacter,
            severity: Severity::Error,
            message: "Lord Stark is dead".into(),
            span: Some(Span {
                start,
                end,
                text: String::new(),
            }),
            evidence: vec![],
            suggestion: None,
            source: IssueSource::Rule,
            confidence: None,
        }
    }

    const TEXT: &str = "“雪下了三天。”Mara lit a fire with the flint, although magic \
        had left the valley for good. Then she slept.";

    #[test]
    fn a_located_finding_becomes_a_reviewer_issue_with_its_span_and_evidence() {
        let ev = vec![hit("Magic left the valley for good.", 4), hit("Mara", 1)];
        let answer = r#"Here you go: {"findings": [{"kind": "WORLD_RULE",
            "quote": "although magic had left the valley for good",
            "message": "The text contradicts itself about magic",
            "suggestion": "Drop the clause", "evidence": [1, 1, 9, 0, -3],
            "confidence": 0.9}]}"#;
        let r = parse(answer, TEXT, &ev, &[]).unwrap();
        assert_eq!(r.issues.len(), 1, "{r:?}");
        let i = &r.issues[0];
        assert_eq!(i.source, IssueSource::Reviewer);
        assert_eq!(i.kind, IssueKind::WorldRule);
        assert_eq!(i.severity, Severity::Warning);
        assert_eq!(i.confidence, Some(0.9));
        let span = i.span.as_ref().unwrap();
        // Code points, past the CJK opening.
        let chars: Vec<char> = TEXT.chars().collect();
        let at: String = chars[span.start as usize..span.end as usize]
            .iter()
            .collect();
        assert_eq!(at, "although magic had left the valley for good");
        assert_eq!(span.text, at);
        assert_eq!(span.start, 40);
        // Evidence by number, once, out-of-range numbers ignored.
        assert_eq!(i.evidence.len(), 1);
        assert_eq!(i.evidence[0].record_id, ev[0].record_id);
        assert_eq!(i.suggestion.as_deref(), Some("Drop the clause"));
    }

    #[test]
    fn paraphrases_unsure_findings_and_what_a_rule_found_are_dropped() {
        let answer = r#"{"findings": [
            {"kind": "WORLD_RULE", "quote": "she used magic to light the fire",
             "message": "paraphrase", "suggestion": "", "evidence": [], "confidence": 0.95},
            {"kind": "INJURY", "quote": "Then she slept", "message": "unsure",
             "suggestion": "", "evidence": [], "confidence": 0.3},
            {"kind": "DEAD_CHARACTER", "quote": "Mara lit a fire", "message": "covered",
             "suggestion": "", "evidence": [], "confidence": 0.99},
            {"kind": "SOMETHING_NEW", "quote": "with the flint", "message": "kept",
             "suggestion": "", "evidence": [], "confidence": 0.6}
        ]}"#;
        // A rule flagged "Mara" (characters 8..12).
        let rules = [rule(8, 12)];
        let r = parse(answer, TEXT, &[], &rules).unwrap();
        assert_eq!((r.unlocated, r.unsure, r.covered), (1, 1, 1), "{r:?}");
        assert_eq!(r.issues.len(), 1);
        // Unknown kinds count as world rules; a middling confidence is only information.
        assert_eq!(r.issues[0].kind, IssueKind::WorldRule);
        assert_eq!(r.issues[0].severity, Severity::Info);
        assert_eq!(r.issues[0].suggestion, None);
    }

    #[test]
    fn a_reviewer_never_reports_an_error() {
        let answer = r#"{"findings": [{"kind": "DEAD_CHARACTER", "quote": "Mara lit a fire",
            "message": "m", "suggestion": "s", "evidence": [], "confidence": 1.0}]}"#;
        let r = parse(answer, TEXT, &[], &[]).unwrap();
        assert_eq!(r.issues[0].severity, Severity::Warning);
        assert_eq!(r.issues[0].kind, IssueKind::DeadCharacter);
    }

    #[test]
    fn an_answer_that_is_not_the_schema_is_an_error() {
        for bad in [
            "I found nothing wrong.",
            "{\"findings\": 3}",
            "} {",
            "{\"findings\": [{\"confidence\": \"high\"}]}",
        ] {
            assert!(parse(bad, TEXT, &[], &[]).is_err(), "{bad}");
        }
        // An empty list is a clean review.
        let r = parse("{\"findings\": []}", TEXT, &[], &[]).unwrap();
        assert!(r.issues.is_empty());
    }

    #[test]
    fn the_prompt_numbers_the_evidence_and_names_what_the_rules_found() {
        let ev = vec![hit("Lord Stark was beheaded.", 2)];
        let msgs = prompt(TEXT, &ev, &[rule(0, 4)], 2000);
        let user = &msgs[1].content;
        assert!(
            user.contains("[1] (chapter 2) Lord Stark was beheaded."),
            "{user}"
        );
        assert!(user.contains("- Lord Stark is dead"), "{user}");
        assert!(user.ends_with(TEXT), "{user}");
        // The schema the model must follow names every kind it may use.
        let s = schema();
        assert_eq!(
            s.pointer("/properties/findings/items/properties/kind/enum")
                .and_then(|v| v.as_array())
                .map(Vec::len),
            Some(KINDS.len())
        );
    }
}
