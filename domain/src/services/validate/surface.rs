//! Checks of the text itself: length against the chapter's target, and terms the
//! tenant's content policy bans.

use super::Ctx;
use super::doc::word_positions;
use crate::model::{IssueKind, IssueSource, Severity, ValidationIssue};
use crate::text::count_words;

/// How far from its target a chapter's length may be (a fraction of the target).
pub const LENGTH_TOLERANCE: f64 = 0.25;

/// Issues of length and banned terms.
pub(super) fn check(ctx: &Ctx<'_>, text: &str) -> Vec<ValidationIssue> {
    let mut out = Vec::new();
    let policy = &ctx.story.policy;
    for term in &policy.banned_terms {
        let t = term.trim().to_lowercase();
        if t.is_empty() {
            continue;
        }
        for (si, s) in ctx.doc.sents.iter().enumerate() {
            for b in word_positions(&s.lower, &t) {
                out.push(ctx.issue(
                    IssueKind::ContentPolicy,
                    Severity::Error,
                    (ctx.doc.offset(si, b), ctx.doc.offset(si, b + t.len())),
                    format!("“{}” is banned by the content policy", term.trim()),
                    Vec::new(),
                    "Replace or remove the term",
                ));
            }
        }
    }
    if let Some(target) = policy.target_words.filter(|t| *t > 0) {
        let words = count_words(text);
        let off = (words - target) as f64 / target as f64;
        if off.abs() > LENGTH_TOLERANCE {
            out.push(ValidationIssue {
                kind: IssueKind::Length,
                severity: Severity::Warning,
                message: format!(
                    "{words} words against a target of {target} ({:+.0}%)",
                    off * 100.0
                ),
                span: None,
                evidence: Vec::new(),
                suggestion: Some(if off < 0.0 {
                    "Develop the scenes the outline asks for".into()
                } else {
                    "Tighten the text or split the chapter".into()
                }),
                source: IssueSource::Rule,
                confidence: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::StoryBuilder;
    use crate::model::IssueKind;

    #[test]
    fn banned_terms_are_flagged_as_words_in_any_case() {
        let mut b = StoryBuilder::new();
        b.story.policy.banned_terms = vec!["Darn".into(), "该死".into()];
        let issues = b.check("Oh, DARN it. 真该死！");
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues.iter().all(|i| i.kind == IssueKind::ContentPolicy));
        assert_eq!(issues[0].span.as_ref().unwrap().text, "DARN");
        assert_eq!(issues[1].span.as_ref().unwrap().text, "该死");
        assert_eq!(issues[1].span.as_ref().unwrap().start, 14);
        assert!(b.check("Darnell smiled.").is_empty());
    }

    #[test]
    fn length_far_from_target_is_flagged_near_target_is_not() {
        let mut b = StoryBuilder::new();
        b.story.policy.target_words = Some(10);
        let short = b.check("Too short.");
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].kind, IssueKind::Length);
        assert!(short[0].span.is_none());
        assert!(
            b.check("one two three four five six seven eight nine")
                .is_empty()
        );
        assert!(b.check("一二三四五六七八九十壹").is_empty());
        assert_eq!(b.check(&"word ".repeat(20)).len(), 1);
    }
}
