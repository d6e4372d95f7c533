//! The continuity rules: a pure check of a text against the story as of the chapter
//! before it. Nothing here reads a store or calls a model, so it is fast (a 3,000-word
//! chapter against hundreds of chapters of memory in milliseconds) and deterministic.
//!
//! Each rule reads the text sentence by sentence, names matched through aliases, and
//! errs on the side of silence: a dead man remembered, an item won back earlier in the
//! text, enemies who make peace first are not flagged. Spans are Unicode code points of
//! the checked text, like passage offsets.

mod body;
mod doc;
mod durations;
mod evidence;
mod items;
mod lexicon;
mod places;
mod relations;
mod repetition;
pub mod review;
mod surface;
mod vital;

use crate::ids::{ChapterId, EntityId};
use crate::model::{
    Entity, EntityKind, EntityState, IssueKind, IssueSource, RecallHit, Relation, Severity, Span,
    ValidationIssue,
};
use doc::{Doc, Mention};
use std::collections::HashMap;

pub use repetition::ShingleIndex;

/// A passage of an earlier chapter, for the repetition check.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlierPassage {
    /// The chapter.
    pub chapter_id: ChapterId,
    /// Its seq.
    pub chapter_seq: i32,
    /// The passage's position among the chapter's passages.
    pub ordinal: i32,
    /// Start offset in the chapter (code points).
    pub start: i32,
    /// End offset, exclusive.
    pub end: i32,
    /// The text.
    pub text: String,
}

/// The tenant's and the chapter's expectations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Terms the tenant's content policy bans (matched as words, any case).
    pub banned_terms: Vec<String>,
    /// The chapter's planned length, in words (CJK characters count as words).
    pub target_words: Option<i64>,
}

/// The story as of the chapter before the checked text.
#[derive(Debug, Clone, Default)]
pub struct Story {
    /// Every entity of the novel.
    pub entities: Vec<Entity>,
    /// Each entity's latest state change as of that chapter.
    pub states: Vec<EntityState>,
    /// The relations established by then.
    pub relations: Vec<Relation>,
    /// Seq of each chapter (for evidence and for ordering relations).
    pub chapter_seqs: HashMap<ChapterId, i32>,
    /// Passages of the earlier chapters.
    pub passages: Vec<EarlierPassage>,
    /// Expectations.
    pub policy: Policy,
}

impl Story {
    /// The canonical name of an entity.
    pub fn name_of(&self, id: EntityId) -> Option<&str> {
        self.entities
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.name.as_str())
    }
}

/// The rules, prepared for one story: names and the repetition index are built once,
/// then any number of texts can be checked.
pub struct Checker<'a> {
    story: &'a Story,
    names: Vec<(usize, String)>,
    by_id: HashMap<EntityId, usize>,
    states: HashMap<usize, &'a EntityState>,
    shingles: ShingleIndex,
}

impl<'a> Checker<'a> {
    /// Prepares the rules for `story`.
    pub fn new(story: &'a Story) -> Self {
        let by_id: HashMap<EntityId, usize> = story
            .entities
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i))
            .collect();
        let mut names = Vec::new();
        for (i, e) in story.entities.iter().enumerate() {
            for n in std::iter::once(&e.name).chain(e.aliases.iter()) {
                let n = n.trim().to_lowercase();
                let long_enough = n.chars().count() >= 2
                    || n.chars().next().is_some_and(crate::text::is_cjk_char);
                if long_enough && !names.iter().any(|(j, m)| *j == i && *m == n) {
                    names.push((i, n));
                }
            }
        }
        let states = story
            .states
            .iter()
            .filter_map(|s| by_id.get(&s.entity_id).map(|&i| (i, s)))
            .collect();
        Self {
            story,
            names,
            by_id,
            states,
            shingles: ShingleIndex::new(&story.passages),
        }
    }

    /// Every issue the rules find in `text`, in text order (issues without a span last).
    pub fn check(&self, text: &str) -> Vec<ValidationIssue> {
        let doc = Doc::new(text);
        let ctx = Ctx::new(self, &doc);
        let mut issues = Vec::new();
        issues.extend(vital::check(&ctx));
        issues.extend(body::check(&ctx));
        issues.extend(items::check(&ctx));
        issues.extend(places::check(&ctx));
        issues.extend(relations::check(&ctx));
        issues.extend(repetition::check(&ctx, &self.shingles));
        issues.extend(surface::check(&ctx, text));
        in_text_order(&mut issues);
        issues
    }
}

/// Sorts issues in text order, issues without a span last (the order of a report).
pub fn in_text_order(issues: &mut [ValidationIssue]) {
    issues.sort_by_key(|i| i.span.as_ref().map_or((i32::MAX, 0), |s| (s.start, s.end)));
}

/// What the rules share while checking one text.
struct Ctx<'c> {
    pub story: &'c Story,
    pub doc: &'c Doc,
    pub by_id: &'c HashMap<EntityId, usize>,
    pub states: &'c HashMap<usize, &'c EntityState>,
    /// Every mention, in text order.
    pub mentions: Vec<Mention>,
    /// The characters each sentence is about: those it names, or, when it names none
    /// and says "he"/"she"/"他"/"她", the one character the sentence before was about.
    pub actors: Vec<Vec<usize>>,
}

const PRONOUNS: &[&str] = &["he", "she", "his", "her", "him", "他", "她"];

impl<'c> Ctx<'c> {
    fn new(checker: &'c Checker<'_>, doc: &'c Doc) -> Self {
        let mentions = doc.mentions(&checker.names);
        let story = checker.story;
        let mut actors: Vec<Vec<usize>> = vec![Vec::new(); doc.sents.len()];
        for m in &mentions {
            if story.entities[m.entity].kind == EntityKind::Character
                && !actors[m.sent].contains(&m.entity)
            {
                actors[m.sent].push(m.entity);
            }
        }
        let mut last: Option<usize> = None;
        for (i, s) in doc.sents.iter().enumerate() {
            if i > 0 && doc.sents[i - 1].scene != s.scene {
                last = None;
            }
            match actors[i].len() {
                0 => {
                    if let Some(l) = last
                        && doc::has_any(&s.lower, PRONOUNS)
                    {
                        actors[i].push(l);
                    }
                }
                1 => last = Some(actors[i][0]),
                _ => last = None,
            }
        }
        Self {
            story,
            doc,
            by_id: &checker.by_id,
            states: &checker.states,
            mentions,
            actors,
        }
    }

    /// The entity at index `i`.
    pub fn entity(&self, i: usize) -> &Entity {
        &self.story.entities[i]
    }

    /// The mentions in sentence `s`.
    pub fn mentions_in(&self, s: usize) -> impl Iterator<Item = &Mention> {
        self.mentions.iter().filter(move |m| m.sent == s)
    }

    /// An issue found by a rule at code points `start..end`.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        kind: IssueKind,
        severity: Severity,
        (start, end): (usize, usize),
        message: String,
        evidence: Vec<RecallHit>,
        suggestion: &str,
    ) -> ValidationIssue {
        ValidationIssue {
            kind,
            severity,
            message,
            span: Some(Span {
                start: start as i32,
                end: end as i32,
                text: self.doc.slice(start, end),
            }),
            evidence,
            suggestion: Some(suggestion.to_owned()),
            source: IssueSource::Rule,
            confidence: None,
        }
    }

    /// The span of mention `m` (code points).
    pub fn mention_span(&self, m: &Mention) -> (usize, usize) {
        (
            self.doc.offset(m.sent, m.bytes.0),
            self.doc.offset(m.sent, m.bytes.1),
        )
    }
}

#[cfg(test)]
pub(super) mod fixture;
