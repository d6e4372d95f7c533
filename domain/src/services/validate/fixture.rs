//! A story built in a few lines, for the rules' tests.

use super::{Checker, EarlierPassage, Story};
use crate::ids::{ChapterId, EntityId, EntityStateId, NovelId, RelationId, TenantId};
use crate::model::{Entity, EntityKind, EntityState, Provenance, Relation, ValidationIssue};
use chrono::Utc;

/// Builds a [`Story`].
pub(crate) struct StoryBuilder {
    pub story: Story,
    tenant: TenantId,
    novel: NovelId,
    chapters: Vec<ChapterId>,
}

impl StoryBuilder {
    pub fn new() -> Self {
        let chapters: Vec<ChapterId> = (0..20).map(|_| ChapterId::new()).collect();
        let mut story = Story::default();
        for (i, c) in chapters.iter().enumerate() {
            story.chapter_seqs.insert(*c, i as i32 + 1);
        }
        Self {
            story,
            tenant: TenantId::new(),
            novel: NovelId::new(),
            chapters,
        }
    }

    pub fn chapter(&self, seq: i32) -> ChapterId {
        self.chapters[seq as usize - 1]
    }

    pub fn entity(&mut self, kind: EntityKind, name: &str, aliases: &[&str]) -> EntityId {
        let id = EntityId::new();
        self.story.entities.push(Entity {
            id,
            tenant_id: self.tenant,
            novel_id: self.novel,
            name: name.into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            kind,
            description: String::new(),
            attributes: serde_json::json!({}),
            importance: 50,
            current_state: String::new(),
            first_chapter_seq: None,
            last_chapter_seq: None,
            appearance_count: 0,
            provenance: Provenance::default(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        });
        id
    }

    pub fn character(&mut self, name: &str, aliases: &[&str]) -> EntityId {
        self.entity(EntityKind::Character, name, aliases)
    }

    pub fn place(&mut self, name: &str, aliases: &[&str]) -> EntityId {
        self.entity(EntityKind::Location, name, aliases)
    }

    pub fn item(&mut self, name: &str, aliases: &[&str]) -> EntityId {
        self.entity(EntityKind::Item, name, aliases)
    }

    /// Sets the entity's latest state, recorded in chapter `seq`.
    pub fn state(&mut self, entity: EntityId, seq: i32, f: impl FnOnce(&mut EntityState)) {
        let mut s = EntityState {
            id: EntityStateId::new(),
            tenant_id: self.tenant,
            entity_id: entity,
            chapter_id: Some(self.chapter(seq)),
            story_time: None,
            state: String::new(),
            attribute_changes: serde_json::json!({}),
            vital: None,
            location_id: None,
            holder_id: None,
            lost: false,
            injuries: Vec::new(),
            provenance: Provenance::default(),
            created_at: Utc::now(),
        };
        f(&mut s);
        self.story.states.retain(|o| o.entity_id != entity);
        self.story.states.push(s);
    }

    pub fn relation(&mut self, a: EntityId, b: EntityId, kind: &str, desc: &str, seq: i32) {
        self.story.relations.push(Relation {
            id: RelationId::new(),
            tenant_id: self.tenant,
            novel_id: self.novel,
            source_id: a,
            target_id: b,
            kind: kind.into(),
            strength: 0.8,
            description: desc.into(),
            since_chapter_id: Some(self.chapter(seq)),
            provenance: Provenance::default(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        });
    }

    pub fn passage(&mut self, seq: i32, text: &str) {
        let ordinal = self
            .story
            .passages
            .iter()
            .filter(|p| p.chapter_seq == seq)
            .count() as i32;
        self.story.passages.push(EarlierPassage {
            chapter_id: self.chapter(seq),
            chapter_seq: seq,
            ordinal,
            start: 0,
            end: text.chars().count() as i32,
            text: text.into(),
        });
    }

    pub fn check(&self, text: &str) -> Vec<ValidationIssue> {
        Checker::new(&self.story).check(text)
    }
}
