//! A dead character acts or speaks. Being remembered, mourned, dreamed of or seen as a
//! corpse is fine, and so is a text that brings the character back on purpose.

use super::Ctx;
use super::doc::{chars_after, has_any, words_after, words_before};
use super::evidence;
use super::lexicon::{ACTS, ACTS_ZH, REMEMBERED, REVIVED, SPEECH};
use crate::model::{EntityKind, IssueKind, Severity, ValidationIssue, Vital};

/// Whether the mention at bytes `(b, e)` of `lower` is the one acting: followed by a
/// verb ("Ned said", "Ned slowly turned", "黛玉笑道") or after a speech verb ("said Ned").
pub(super) fn acts(lower: &str, (b, e): (usize, usize)) -> bool {
    let next = chars_after(lower, e, 1);
    if next == "'" || next == "’" || next == "的" || next == "之" {
        return false; // possessive: "Ned's grave", "黛玉的墓"
    }
    let after: Vec<&str> = words_after(lower, e, 3)
        .into_iter()
        .skip_while(|w| w.ends_with("ly") || *w == "then" || *w == "also")
        .collect();
    let directly_after = lower[e..].starts_with(' ') || lower[e..].starts_with(',');
    if directly_after
        && let Some(w) = after.first()
        && (ACTS.contains(w) || SPEECH.contains(w))
    {
        return true;
    }
    if let Some(w) = words_before(lower, b, 1).first()
        && SPEECH.contains(w)
        && lower[..b].trim_end().ends_with(w)
    {
        return true;
    }
    let zh = chars_after(lower, e, 4);
    ACTS_ZH.iter().any(|v| {
        zh.find(v).is_some_and(|i| {
            zh[..i]
                .chars()
                .all(|c| "笑冷冷地轻声缓缓慢慢也又便就".contains(c))
        })
    })
}

/// Issues of dead characters acting.
pub(super) fn check(ctx: &Ctx<'_>) -> Vec<ValidationIssue> {
    let mut out = Vec::new();
    let mut revived = false;
    for (si, s) in ctx.doc.sents.iter().enumerate() {
        if has_any(&s.lower, REVIVED) {
            revived = true;
        }
        if revived || has_any(&s.lower, REMEMBERED) {
            continue;
        }
        for m in ctx.mentions_in(si) {
            let e = ctx.entity(m.entity);
            let Some(state) = ctx.states.get(&m.entity) else {
                continue;
            };
            if e.kind != EntityKind::Character || state.vital != Some(Vital::Dead) {
                continue;
            }
            if !acts(&s.lower, m.bytes) {
                continue;
            }
            out.push(ctx.issue(
                IssueKind::DeadCharacter,
                Severity::Error,
                ctx.mention_span(m),
                format!("{} is dead by now, yet acts or speaks here", e.name),
                vec![evidence::state(ctx.story, state)],
                "Make it a memory or another character, or bring the character back on purpose",
            ));
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::StoryBuilder;
    use crate::model::{IssueKind, Vital};

    fn story() -> StoryBuilder {
        let mut b = StoryBuilder::new();
        let ned = b.character("Ned Stark", &["Ned", "Lord Stark"]);
        b.state(ned, 3, |s| s.vital = Some(Vital::Dead));
        let dy = b.character("林黛玉", &["黛玉"]);
        b.state(dy, 5, |s| s.vital = Some(Vital::Dead));
        b.character("Arya", &[]);
        b
    }

    #[test]
    fn the_dead_speaking_or_acting_are_flagged_through_aliases() {
        let b = story();
        for (text, quoted) in [
            (
                "Arya ran in. Lord Stark smiled and poured the wine.",
                "Lord Stark",
            ),
            ("“Winter is coming,” said Ned.", "Ned"),
            ("Ned slowly turned to the window.", "Ned"),
            ("“走吧。”黛玉笑道。", "黛玉"),
            ("林黛玉推开窗户。", "林黛玉"),
        ] {
            let issues = b.check(text);
            assert_eq!(issues.len(), 1, "{text}: {issues:?}");
            let i = &issues[0];
            assert_eq!(i.kind, IssueKind::DeadCharacter);
            let span = i.span.as_ref().unwrap();
            assert_eq!(span.text, quoted);
            let chars: Vec<char> = text.chars().collect();
            let at: String = chars[span.start as usize..span.end as usize]
                .iter()
                .collect();
            assert_eq!(at, quoted);
            assert!(i.evidence[0].text.contains("dead"), "{:?}", i.evidence);
        }
    }

    #[test]
    fn the_dead_remembered_mourned_or_buried_are_not_flagged() {
        let b = story();
        for text in [
            "Arya remembered how Ned smiled at her.",
            "They buried Lord Stark under the weirwood.",
            "Ned's sword hung above the hearth.",
            "Ned was dead, and nothing would change that.",
            "Arya stood by the corpse; Ned lay still.",
            "Ned had said winter was coming.",
            "宝玉想起黛玉笑着的样子。",
            "众人在黛玉的墓前站了很久。",
            "黛玉的遗物放在桌上。",
            "Arya smiled.",
        ] {
            assert!(b.check(text).is_empty(), "{text}: {:?}", b.check(text));
        }
    }

    #[test]
    fn a_character_brought_back_on_purpose_may_act() {
        let b = story();
        assert!(
            b.check("Ned had survived the block after all. Ned smiled.")
                .is_empty()
        );
    }

    #[test]
    fn the_living_act_freely() {
        let mut b = StoryBuilder::new();
        let ned = b.character("Ned", &[]);
        b.state(ned, 3, |s| s.vital = Some(Vital::Alive));
        assert!(b.check("Ned smiled.").is_empty());
    }
}
