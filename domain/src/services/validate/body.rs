//! An injury ignored: a character uses a hand, arm, eye, leg or foot the story says is
//! lost. Talking about the stump, the empty sleeve or the hand that used to be there is
//! fine, and so is using the other hand.

use super::Ctx;
use super::doc::{has_any, word_positions, words_before};
use super::evidence;
use super::lexicon::{BODY_GONE, LOSS, USES_BODY};
use crate::model::{IssueKind, Severity, ValidationIssue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
    Unknown,
}

/// English names of the parts, Chinese names, and the parts lost with it.
const PARTS: &[(&str, &str, &[&str])] = &[
    ("hand", "手", &[]),
    ("arm", "臂", &["hand"]),
    ("eye", "眼", &[]),
    ("leg", "腿", &["foot"]),
    ("foot", "脚", &[]),
];

fn plural(part: &str) -> String {
    if part == "foot" {
        "feet".into()
    } else {
        format!("{part}s")
    }
}

/// The parts an injury record says are lost ("lost his left hand", "断了右臂").
fn lost_parts(injury: &str) -> Vec<(Side, &'static str)> {
    let s = injury.to_lowercase();
    if !has_any(&s, LOSS) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut push = |side: Side, part: &'static str| {
        if !out.contains(&(side, part)) {
            out.push((side, part));
        }
        for (p, _, with) in PARTS {
            if *p == part {
                for w in *with {
                    if let Some((q, _, _)) = PARTS.iter().find(|(q, _, _)| q == w)
                        && !out.contains(&(side, *q))
                    {
                        out.push((side, *q));
                    }
                }
            }
        }
    };
    for &(part, zh, _) in PARTS {
        for name in [part.to_string(), plural(part)] {
            for b in word_positions(&s, &name) {
                match words_before(&s, b, 1).first().copied() {
                    Some("left") => push(Side::Left, part),
                    Some("right") => push(Side::Right, part),
                    Some("both") => {
                        push(Side::Left, part);
                        push(Side::Right, part);
                    }
                    _ => push(Side::Unknown, part),
                }
            }
        }
        let zh_names: Vec<&str> = if part == "arm" {
            vec!["臂", "胳膊"]
        } else {
            vec![zh]
        };
        for z in zh_names {
            for (b, _) in s.match_indices(z) {
                match s[..b].chars().next_back() {
                    Some('左') => push(Side::Left, part),
                    Some('右') => push(Side::Right, part),
                    Some('双') => {
                        push(Side::Left, part);
                        push(Side::Right, part);
                    }
                    _ => push(Side::Unknown, part),
                }
            }
        }
    }
    out
}

/// The byte range in `lower` where a lost part is used, if any.
fn used(lower: &str, side: Side, part: &str) -> Option<(usize, usize)> {
    let zh = PARTS
        .iter()
        .find(|(p, _, _)| *p == part)
        .map_or("", |p| p.1);
    let mut phrases: Vec<String> = vec![
        format!("both {}", plural(part)),
        format!("two {}", plural(part)),
        format!("双{zh}"),
        format!("两只{zh}"),
    ];
    match side {
        Side::Left => phrases.extend([format!("left {part}"), format!("左{zh}")]),
        Side::Right => phrases.extend([format!("right {part}"), format!("右{zh}")]),
        Side::Unknown => phrases.push(plural(part)),
    }
    for p in &phrases {
        for b in word_positions(lower, p) {
            let owner = words_before(lower, b, 1);
            let possessive = p.starts_with(|c: char| !c.is_ascii())
                || owner.first().is_some_and(|w| {
                    ["his", "her", "their", "my", "your"].contains(w)
                        || w.ends_with("'s")
                        || w.ends_with("’s")
                })
                || p.starts_with("both")
                || p.starts_with("two");
            if possessive {
                return Some((b, b + p.len()));
            }
        }
    }
    None
}

/// Issues of lost body parts used.
pub(super) fn check(ctx: &Ctx<'_>) -> Vec<ValidationIssue> {
    let mut out = Vec::new();
    let lost: Vec<(usize, Vec<(Side, &str)>)> = ctx
        .states
        .iter()
        .map(|(&e, s)| {
            (
                e,
                s.injuries
                    .iter()
                    .flat_map(|i| lost_parts(i))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if lost.is_empty() {
        return out;
    }
    for (si, s) in ctx.doc.sents.iter().enumerate() {
        if !has_any(&s.lower, USES_BODY) || has_any(&s.lower, BODY_GONE) {
            continue;
        }
        for (e, parts) in &lost {
            if !ctx.actors[si].contains(e) {
                continue;
            }
            let Some(b) = parts
                .iter()
                .find_map(|(side, part)| used(&s.lower, *side, part))
            else {
                continue;
            };
            let name = &ctx.entity(*e).name;
            let state = ctx.states[e];
            out.push(ctx.issue(
                IssueKind::Injury,
                Severity::Error,
                (ctx.doc.offset(si, b.0), ctx.doc.offset(si, b.1)),
                format!(
                    "{name} uses what the story says is lost ({})",
                    state.injuries.join(", ")
                ),
                vec![evidence::state(ctx.story, state)],
                "Use the other side, or show how the character manages without it",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::StoryBuilder;
    use super::*;

    fn story() -> StoryBuilder {
        let mut b = StoryBuilder::new();
        let jaime = b.character("Jaime Lannister", &["Jaime", "the Kingslayer"]);
        b.state(jaime, 4, |s| {
            s.injuries = vec!["lost his right hand".into()]
        });
        let yang = b.character("杨过", &[]);
        b.state(yang, 6, |s| s.injuries = vec!["断了左臂".into()]);
        b
    }

    #[test]
    fn parts_lost_are_read_from_the_record() {
        assert_eq!(lost_parts("lost his right hand"), [(Side::Right, "hand")]);
        assert_eq!(
            lost_parts("断了左臂"),
            [(Side::Left, "arm"), (Side::Left, "hand")]
        );
        assert!(lost_parts("a scar on his left hand").is_empty());
    }

    #[test]
    fn a_lost_hand_used_is_flagged() {
        let b = story();
        for (text, quoted) in [
            ("Jaime raised his right hand in salute.", "right hand"),
            (
                "The Kingslayer gripped the sword with both hands.",
                "both hands",
            ),
            (
                "Jaime entered. He clenched his right hand into a fist.",
                "right hand",
            ),
            ("杨过伸出左手，接住了剑。", "左手"),
            ("杨过双手握剑。", "双手"),
        ] {
            let issues = b.check(text);
            assert_eq!(issues.len(), 1, "{text}: {issues:?}");
            assert_eq!(issues[0].kind, IssueKind::Injury);
            assert_eq!(issues[0].span.as_ref().unwrap().text, quoted);
        }
    }

    #[test]
    fn the_other_hand_the_stump_and_others_hands_are_fine() {
        let b = story();
        for text in [
            "Jaime raised his left hand in salute.",
            "Jaime rubbed the stump of his right hand.",
            "Jaime remembered how his right hand once held a sword.",
            "Brienne raised her right hand.",
            "杨过用右手握剑。",
            "杨过空荡荡的左袖随风飘动。",
        ] {
            assert!(b.check(text).is_empty(), "{text}: {:?}", b.check(text));
        }
    }
}
