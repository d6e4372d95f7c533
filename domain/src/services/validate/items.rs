//! An item used or held by someone who no longer has it: it was lost, destroyed, sold
//! or given away, or someone else holds it. Once the text itself tells the item changing
//! hands (won back, found, handed over), the record no longer binds what follows.

use super::Ctx;
use super::doc::has_any;
use super::evidence;
use super::lexicon::{NOT_HELD, TRANSFERS_ITEM, USES_ITEM};
use crate::model::{EntityKind, IssueKind, Severity, ValidationIssue};
use std::collections::HashSet;

/// Issues of items used by someone who does not have them.
pub(super) fn check(ctx: &Ctx<'_>) -> Vec<ValidationIssue> {
    let mut out = Vec::new();
    let mut moved: HashSet<usize> = HashSet::new();
    let mut flagged: HashSet<usize> = HashSet::new();
    for (si, s) in ctx.doc.sents.iter().enumerate() {
        let transfer = has_any(&s.lower, TRANSFERS_ITEM);
        let use_it = has_any(&s.lower, USES_ITEM) && !has_any(&s.lower, NOT_HELD);
        for m in ctx.mentions_in(si) {
            let item = m.entity;
            if ctx.entity(item).kind != EntityKind::Item || moved.contains(&item) {
                continue;
            }
            if transfer {
                moved.insert(item);
                continue;
            }
            let Some(state) = ctx.states.get(&item) else {
                continue;
            };
            let users = &ctx.actors[si];
            if !use_it || users.is_empty() || flagged.contains(&item) {
                continue;
            }
            let holder = state.holder_id.and_then(|h| ctx.by_id.get(&h).copied());
            let user = ctx.entity(users[0]).name.clone();
            let name = &ctx.entity(item).name;
            let message = if state.lost {
                format!("{user} uses {name}, which is lost by now")
            } else if let Some(h) = holder.filter(|h| !users.contains(h)) {
                format!(
                    "{user} uses {name}, which {} holds by now",
                    ctx.entity(h).name
                )
            } else {
                continue;
            };
            flagged.insert(item);
            out.push(ctx.issue(
                IssueKind::ItemState,
                Severity::Error,
                ctx.mention_span(m),
                message,
                vec![evidence::state(ctx.story, state)],
                "Show the item coming back first, or give the scene another item",
            ));
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
        let jon = b.character("Jon Snow", &["Jon", "Lord Snow"]);
        let sam = b.character("Samwell", &["Sam"]);
        let claw = b.item("Longclaw", &["the bastard sword"]);
        b.state(claw, 7, |s| s.holder_id = Some(sam));
        let ice = b.item("Ice", &[]);
        b.state(ice, 2, |s| s.lost = true);
        let sword = b.item("倚天剑", &["倚天"]);
        b.state(sword, 3, |s| {
            s.lost = true;
            s.state = "被毁".into()
        });
        b.character("张无忌", &[]);
        let _ = jon;
        b
    }

    #[test]
    fn an_item_someone_else_holds_or_lost_is_flagged() {
        let b = story();
        for (text, quoted, holder) in [
            (
                "Jon drew Longclaw and charged.",
                "Longclaw",
                "Samwell holds",
            ),
            (
                "Lord Snow swung the bastard sword.",
                "the bastard sword",
                "Samwell",
            ),
            ("Jon raised Ice above his head.", "Ice", "lost"),
            ("张无忌拔出倚天剑。", "倚天剑", "lost"),
        ] {
            let issues = b.check(text);
            assert_eq!(issues.len(), 1, "{text}: {issues:?}");
            assert_eq!(issues[0].kind, IssueKind::ItemState);
            assert_eq!(issues[0].span.as_ref().unwrap().text, quoted);
            assert!(issues[0].message.contains(holder), "{}", issues[0].message);
        }
    }

    #[test]
    fn items_won_back_held_by_their_holder_or_missed_are_fine() {
        let b = story();
        for text in [
            "Sam drew Longclaw.",
            "Sam handed Longclaw back to Jon. Jon drew Longclaw and charged.",
            "Jon won back Ice from the Lannisters. Jon raised Ice above his head.",
            "Jon wished he still had Longclaw.",
            "Jon thought of Ice, lost in the river.",
            "张无忌找回了倚天剑。张无忌拔出倚天剑。",
            "张无忌想起倚天剑，握紧了拳头。",
        ] {
            assert!(b.check(text).is_empty(), "{text}: {:?}", b.check(text));
        }
    }
}
