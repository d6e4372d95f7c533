//! Where characters are: in two places in one scene without moving between them, or
//! somewhere the story's known travel times say they cannot have reached yet.
//!
//! Travel times come from the bible: a relation between two places whose kind or
//! description gives a duration ("road — four days' ride", "三天路程"), or a place's
//! `travelDays` attribute (`{"Riverrun": 4}`). A journey is only judged when the text
//! says how much time passed ("two days later", "次日"); "four days passed" before a
//! four-day journey is fine.

use super::doc::{chars_before, has_any, words_before};
use super::durations::{elapsed, journey_days};
use super::lexicon::{AT, AT_ZH, MOVES};
use super::{Ctx, evidence};
use crate::model::{EntityKind, IssueKind, Relation, Severity, ValidationIssue};
use std::collections::HashMap;

/// A sentence putting a character somewhere.
struct Claim {
    who: usize,
    place: usize,
    sent: usize,
    span: (usize, usize),
    moving: bool,
}

fn claims(ctx: &Ctx<'_>) -> Vec<Claim> {
    let mut out = Vec::new();
    for (si, s) in ctx.doc.sents.iter().enumerate() {
        let moving = has_any(&s.lower, MOVES);
        for m in ctx.mentions_in(si) {
            if ctx.entity(m.entity).kind != EntityKind::Location {
                continue;
            }
            let before = words_before(&s.lower, m.bytes.0, 2);
            let zh = chars_before(&s.lower, m.bytes.0, 2);
            let placed =
                before.iter().any(|w| AT.contains(w)) || AT_ZH.iter().any(|a| zh.ends_with(a));
            if !placed {
                continue;
            }
            for &who in &ctx.actors[si] {
                out.push(Claim {
                    who,
                    place: m.entity,
                    sent: si,
                    span: ctx.mention_span(m),
                    moving,
                });
            }
        }
    }
    out
}

/// Whether one place lies inside the other (its description names the other).
fn nested(ctx: &Ctx<'_>, a: usize, b: usize) -> bool {
    let (ea, eb) = (ctx.entity(a), ctx.entity(b));
    let in_desc = |outer: &crate::model::Entity, inner: &crate::model::Entity| {
        let d = inner.description.to_lowercase();
        std::iter::once(&outer.name)
            .chain(outer.aliases.iter())
            .any(|n| !n.trim().is_empty() && d.contains(&n.to_lowercase()))
    };
    in_desc(ea, eb) || in_desc(eb, ea)
}

/// The known travel time between two places, in days, and the relation that says so.
fn route<'r>(ctx: &'r Ctx<'_>, a: usize, b: usize) -> Option<(f64, Option<&'r Relation>)> {
    let (ida, idb) = (ctx.entity(a).id, ctx.entity(b).id);
    for r in &ctx.story.relations {
        let pair = (r.source_id == ida && r.target_id == idb)
            || (r.source_id == idb && r.target_id == ida);
        if pair
            && let Some(d) = journey_days(&format!("{} {}", r.kind, r.description).to_lowercase())
        {
            return Some((d, Some(r)));
        }
    }
    for (from, to) in [(a, b), (b, a)] {
        let attrs = &ctx.entity(from).attributes;
        let table = attrs.get("travelDays").or_else(|| attrs.get("travel_days"));
        if let Some(d) = table
            .and_then(|t| t.get(&ctx.entity(to).name))
            .and_then(serde_json::Value::as_f64)
        {
            return Some((d, None));
        }
    }
    None
}

/// Issues of characters in two places at once or travelling too fast.
pub(super) fn check(ctx: &Ctx<'_>) -> Vec<ValidationIssue> {
    let claims = claims(ctx);
    let mut out = Vec::new();
    // Time told as passed before each sentence: (days, whether the text said at all).
    let mut passed = Vec::with_capacity(ctx.doc.sents.len());
    let (mut days, mut told) = (0.0, false);
    for s in &ctx.doc.sents {
        if let Some(d) = elapsed(&s.lower) {
            days += d;
            told = true;
        }
        passed.push((days, told));
    }
    let mut here: HashMap<usize, &Claim> = HashMap::new();
    let mut placed_before: Vec<usize> = Vec::new();
    for c in &claims {
        let scene = ctx.doc.sents[c.sent].scene;
        let name = &ctx.entity(c.who).name;
        let place = &ctx.entity(c.place).name;
        if let Some(prev) = here.get(&c.who)
            && ctx.doc.sents[prev.sent].scene == scene
            && prev.place != c.place
            && !c.moving
            && !ctx
                .doc
                .sents
                .get(prev.sent + 1..c.sent)
                .unwrap_or_default()
                .iter()
                .any(|s| has_any(&s.lower, MOVES))
            && !nested(ctx, prev.place, c.place)
        {
            let (a, b) = ctx.doc.sentence_span(prev.sent);
            out.push(ctx.issue(
                IssueKind::Location,
                Severity::Warning,
                c.span,
                format!(
                    "{name} is in {place} here, but in {} earlier in the same scene (“{}”)",
                    ctx.entity(prev.place).name,
                    ctx.doc.slice(a, b)
                ),
                Vec::new(),
                "Show the character moving, or start a new scene",
            ));
        }
        here.insert(c.who, c);
        if placed_before.contains(&c.who) {
            continue;
        }
        placed_before.push(c.who);
        let Some(state) = ctx.states.get(&c.who) else {
            continue;
        };
        let Some(from) = state.location_id.and_then(|l| ctx.by_id.get(&l).copied()) else {
            continue;
        };
        let (days, told) = passed[c.sent];
        if from == c.place || !told {
            continue;
        }
        let Some((need, rel)) = route(ctx, from, c.place) else {
            continue;
        };
        if days + 1e-9 >= need {
            continue;
        }
        let mut evidence = vec![evidence::state(ctx.story, state)];
        evidence.extend(rel.map(|r| evidence::relation(ctx.story, r)));
        out.push(ctx.issue(
            IssueKind::TravelTime,
            Severity::Warning,
            c.span,
            format!(
                "{name} reaches {place} from {} after {days} day(s); the journey takes {need}",
                ctx.entity(from).name
            ),
            evidence,
            "Let enough time pass, or say how the journey was made faster",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::StoryBuilder;
    use crate::model::IssueKind;

    fn story() -> StoryBuilder {
        let mut b = StoryBuilder::new();
        let cat = b.character("Catelyn", &["Cat", "Lady Stark"]);
        let wf = b.place("Winterfell", &[]);
        let rr = b.place("Riverrun", &[]);
        b.place("the Great Hall", &[]);
        b.story.entities.last_mut().unwrap().description = "The hall of Winterfell".into();
        b.relation(wf, rr, "route", "four days' ride along the river road", 1);
        b.state(cat, 5, |s| s.location_id = Some(wf));
        let bx = b.character("宝玉", &[]);
        let jf = b.place("贾府", &[]);
        let sz = b.place("苏州", &[]);
        b.relation(jf, sz, "路线", "水路十天", 1);
        b.state(bx, 5, |s| s.location_id = Some(jf));
        b
    }

    #[test]
    fn two_places_in_one_scene_are_flagged() {
        let b = story();
        let text = "Catelyn sat in Winterfell, reading the letter. Lady Stark waited in Riverrun for an answer.";
        let issues = b.check(text);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].kind, IssueKind::Location);
        assert_eq!(issues[0].span.as_ref().unwrap().text, "Riverrun");
    }

    #[test]
    fn moving_a_new_scene_or_a_place_inside_another_are_fine() {
        let b = story();
        for text in [
            "Catelyn sat in Winterfell. She rode south. Catelyn waited in Riverrun four days later.",
            "Catelyn sat in Winterfell.\n\n* * *\n\nFour days passed. Catelyn waited in Riverrun.",
            "Catelyn sat in Winterfell. Catelyn waited in the Great Hall.",
        ] {
            assert!(b.check(text).is_empty(), "{text}: {:?}", b.check(text));
        }
    }

    #[test]
    fn a_journey_faster_than_the_road_is_flagged() {
        let b = story();
        for (text, quoted) in [
            ("The next morning, Catelyn arrived at Riverrun.", "Riverrun"),
            ("Two days later Lady Stark rode into Riverrun.", "Riverrun"),
            ("次日，宝玉来到苏州。", "苏州"),
        ] {
            let issues = b.check(text);
            assert_eq!(issues.len(), 1, "{text}: {issues:?}");
            assert_eq!(issues[0].kind, IssueKind::TravelTime);
            assert_eq!(issues[0].span.as_ref().unwrap().text, quoted);
            assert_eq!(issues[0].evidence.len(), 2);
        }
    }

    #[test]
    fn a_journey_given_its_time_or_untimed_is_fine() {
        let b = story();
        for text in [
            "Four days passed. Catelyn arrived at Riverrun.",
            "After four days of hard riding, Catelyn arrived at Riverrun.",
            "Catelyn arrived at Riverrun.",
            "过了十天，宝玉来到苏州。",
            "The next morning, Catelyn walked in Winterfell.",
        ] {
            assert!(b.check(text).is_empty(), "{text}: {:?}", b.check(text));
        }
    }
}
