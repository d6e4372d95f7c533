//! A relation contradicted: enemies embracing as friends, when nothing in the text (or
//! a later relation in the bible) reconciles them first. A pretence ("pretended to
//! embrace") or a refusal is fine.

use super::doc::has_any;
use super::lexicon::{ENEMY, FEIGNED, FRIENDLY, FRIENDLY_KIND, RECONCILED};
use super::{Ctx, evidence};
use crate::model::{IssueKind, Relation, Severity, ValidationIssue};

fn seq(ctx: &Ctx<'_>, r: &Relation) -> i32 {
    r.since_chapter_id
        .and_then(|c| ctx.story.chapter_seqs.get(&c).copied())
        .unwrap_or(0)
}

/// The enmities still standing: enemy relations no later friendly one replaced.
fn enmities<'r>(ctx: &'r Ctx<'_>) -> Vec<(usize, usize, &'r Relation)> {
    let rels = &ctx.story.relations;
    let same = |a: &Relation, b: &Relation| {
        (a.source_id == b.source_id && a.target_id == b.target_id)
            || (a.source_id == b.target_id && a.target_id == b.source_id)
    };
    rels.iter()
        .filter(|r| has_any(&r.kind.to_lowercase(), ENEMY))
        .filter(|r| {
            !rels.iter().any(|o| {
                same(o, r)
                    && has_any(&o.kind.to_lowercase(), FRIENDLY_KIND)
                    && seq(ctx, o) >= seq(ctx, r)
            })
        })
        .filter_map(|r| {
            Some((
                *ctx.by_id.get(&r.source_id)?,
                *ctx.by_id.get(&r.target_id)?,
                r,
            ))
        })
        .collect()
}

/// Issues of enemies acting as friends.
pub(super) fn check(ctx: &Ctx<'_>) -> Vec<ValidationIssue> {
    let enmities = enmities(ctx);
    let mut out = Vec::new();
    if enmities.is_empty() {
        return out;
    }
    let mut reconciled = false;
    for (si, s) in ctx.doc.sents.iter().enumerate() {
        if has_any(&s.lower, RECONCILED) {
            reconciled = true;
        }
        if reconciled || !has_any(&s.lower, FRIENDLY) || has_any(&s.lower, FEIGNED) {
            continue;
        }
        let named: Vec<usize> = ctx.mentions_in(si).map(|m| m.entity).collect();
        for (a, b, r) in &enmities {
            if named.contains(a) && named.contains(b) {
                out.push(ctx.issue(
                    IssueKind::Relationship,
                    Severity::Warning,
                    ctx.doc.sentence_span(si),
                    format!(
                        "{} and {} are enemies by now, yet act as friends here",
                        ctx.entity(*a).name,
                        ctx.entity(*b).name
                    ),
                    vec![evidence::relation(ctx.story, r)],
                    "Show them reconciling first, or keep the scene hostile",
                ));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::StoryBuilder;
    use crate::model::IssueKind;

    fn story() -> StoryBuilder {
        let mut b = StoryBuilder::new();
        let t = b.character("Tyrion", &["the Imp"]);
        let c = b.character("Cersei", &[]);
        b.relation(t, c, "enemy", "she wants him dead", 3);
        let q = b.character("乔峰", &["萧峰"]);
        let m = b.character("慕容复", &[]);
        b.relation(q, m, "仇敌", "", 4);
        b
    }

    #[test]
    fn enemies_embracing_are_flagged() {
        let b = story();
        for text in [
            "Tyrion embraced Cersei like an old friend.",
            "Cersei hugged the Imp and laughed.",
            "萧峰与慕容复相拥而笑。",
        ] {
            let issues = b.check(text);
            assert_eq!(issues.len(), 1, "{text}: {issues:?}");
            assert_eq!(issues[0].kind, IssueKind::Relationship);
            assert_eq!(issues[0].span.as_ref().unwrap().text, text);
        }
    }

    #[test]
    fn reconciled_feigned_or_later_friends_are_fine() {
        let mut b = story();
        for text in [
            "Tyrion apologized at last, and Cersei forgave him. Tyrion embraced Cersei.",
            "Tyrion pretended to embrace Cersei.",
            "Cersei refused to embrace Tyrion.",
            "乔峰与慕容复冰释前嫌。萧峰与慕容复相拥而笑。",
            "Tyrion embraced Jaime.",
        ] {
            assert!(b.check(text).is_empty(), "{text}: {:?}", b.check(text));
        }
        let (t, c) = (b.story.entities[0].id, b.story.entities[1].id);
        b.relation(t, c, "ally", "a truce for the war", 6);
        assert!(b.check("Tyrion embraced Cersei.").is_empty());
    }
}
