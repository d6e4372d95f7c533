//! The story bible: entities and their state history, relations, timeline events and
//! foreshadowing threads.

use super::str_enum;
use crate::ids::{
    ChapterId, EntityId, EntityStateId, EventId, ForeshadowingId, NovelId, RelationId, TenantId,
};
use chrono::{DateTime, Utc};

str_enum! {
    /// What an entity is.
    EntityKind {
        /// A person or sentient being.
        Character = "CHARACTER",
        /// A place.
        Location = "LOCATION",
        /// An object.
        Item = "ITEM",
        /// A group, sect, company, nation.
        Organization = "ORGANIZATION",
        /// An idea, rule, technique or magic system.
        Concept = "CONCEPT",
    }
}

str_enum! {
    /// Who wrote a story-bible record.
    #[derive(Default)]
    Origin {
        /// The author (or an extracted record the author edited: never overwritten).
        #[default]
        Author = "AUTHOR",
        /// Extracted from a chapter by the language model; replaced when that chapter
        /// changes.
        Extracted = "EXTRACTED",
    }
}

str_enum! {
    /// Whether a character lives.
    Vital {
        /// Alive.
        Alive = "ALIVE",
        /// Dead.
        Dead = "DEAD",
    }
}

/// Where a story-bible record came from: the author, or a chapter it was extracted
/// from, with the span of that chapter's text that says so.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provenance {
    /// Who wrote it.
    pub origin: Origin,
    /// The chapter it was extracted from (extracted records; kept after an author edit).
    pub chapter_id: Option<ChapterId>,
    /// Where the evidence starts in that chapter's content (Unicode code points).
    pub span_start: Option<i32>,
    /// Where it ends (exclusive).
    pub span_end: Option<i32>,
}

impl Provenance {
    /// Extracted from `chapter`, with the evidence at `span` if it was found.
    pub fn extracted(chapter: ChapterId, span: Option<(i32, i32)>) -> Self {
        Self {
            origin: Origin::Extracted,
            chapter_id: Some(chapter),
            span_start: span.map(|s| s.0),
            span_end: span.map(|s| s.1),
        }
    }

    /// The same provenance, now owned by the author (an edit of an extracted record).
    pub fn edited(&self) -> Self {
        Self {
            origin: Origin::Author,
            ..self.clone()
        }
    }
}

/// A story-bible entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Identity.
    pub id: EntityId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel it belongs to.
    pub novel_id: NovelId,
    /// Canonical name, unique per novel and kind.
    pub name: String,
    /// Other names it goes by (retrieval matches these too).
    pub aliases: Vec<String>,
    /// What it is.
    pub kind: EntityKind,
    /// Description.
    pub description: String,
    /// Free-form attributes (age, eye colour, cultivation level, ...).
    pub attributes: serde_json::Value,
    /// Importance 0..=100 (protagonist ~100, passer-by ~0).
    pub importance: i32,
    /// Its state as of the latest recorded change ("alive", "wounded", ...).
    pub current_state: String,
    /// Seq of the first chapter it appears in.
    pub first_chapter_seq: Option<i32>,
    /// Seq of the last chapter it appears in.
    pub last_chapter_seq: Option<i32>,
    /// In how many chapters it appears.
    pub appearance_count: i32,
    /// Who wrote it (an entity extraction discovered has its first chapter here).
    pub provenance: Provenance,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One change of an entity's state ("alive → dead in chapter 12").
#[derive(Debug, Clone, PartialEq)]
pub struct EntityState {
    /// Identity.
    pub id: EntityStateId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The entity.
    pub entity_id: EntityId,
    /// The chapter in which the change happens, if tied to one.
    pub chapter_id: Option<ChapterId>,
    /// Story time of the change (ordinal in the novel's time system).
    pub story_time: Option<i64>,
    /// The state from then on.
    pub state: String,
    /// Attribute changes, as a JSON object of new values.
    pub attribute_changes: serde_json::Value,
    /// Alive or dead from then on, when the change says.
    pub vital: Option<Vital>,
    /// Where the entity is from then on (a LOCATION entity), when the change says.
    pub location_id: Option<EntityId>,
    /// For an item: who holds it from then on (a CHARACTER or ORGANIZATION entity); for a
    /// character: unused.
    pub holder_id: Option<EntityId>,
    /// For an item: it is gone for good (lost, destroyed) from then on.
    pub lost: bool,
    /// Injuries the entity carries from then on ("lost his left hand").
    pub injuries: Vec<String>,
    /// Who recorded it.
    pub provenance: Provenance,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A directed relation between two entities of the same novel.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// Identity.
    pub id: RelationId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel.
    pub novel_id: NovelId,
    /// From.
    pub source_id: EntityId,
    /// To.
    pub target_id: EntityId,
    /// Type, lower-case free text: friend, enemy, family, lover, subordinate, ...
    pub kind: String,
    /// Strength 0.0..=1.0.
    pub strength: f64,
    /// Description.
    pub description: String,
    /// The chapter since which it holds.
    pub since_chapter_id: Option<ChapterId>,
    /// Who recorded it.
    pub provenance: Provenance,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A point (or span) on the story's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Identity.
    pub id: EventId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel.
    pub novel_id: NovelId,
    /// The chapter that tells it, if any.
    pub chapter_id: Option<ChapterId>,
    /// Short title.
    pub title: String,
    /// What happens.
    pub summary: String,
    /// Story time it starts (ordinal in the novel's time system).
    pub story_time_start: i64,
    /// Story time it ends, if it spans time.
    pub story_time_end: Option<i64>,
    /// Where it happens (a LOCATION entity).
    pub location_id: Option<EntityId>,
    /// Who and what takes part.
    pub involved: Vec<EntityId>,
    /// Importance 0..=100.
    pub importance: i32,
    /// Who recorded it.
    pub provenance: Provenance,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

str_enum! {
    /// State of a foreshadowing thread.
    ForeshadowingStatus {
        /// Planted, not yet paid off.
        Open = "OPEN",
        /// Paid off.
        Resolved = "RESOLVED",
        /// Dropped on purpose.
        Abandoned = "ABANDONED",
    }
}

/// Something planted that must pay off.
#[derive(Debug, Clone, PartialEq)]
pub struct Foreshadowing {
    /// Identity.
    pub id: ForeshadowingId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel.
    pub novel_id: NovelId,
    /// Short title.
    pub title: String,
    /// What was planted.
    pub description: String,
    /// The chapter it was planted in.
    pub planted_chapter_id: Option<ChapterId>,
    /// How it is expected to pay off.
    pub expected_payoff: String,
    /// The chapter that resolved it.
    pub resolved_chapter_id: Option<ChapterId>,
    /// State.
    pub status: ForeshadowingStatus,
    /// Who recorded it.
    pub provenance: Provenance,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}
