//! Story-bible object types: `Entity`, `EntityState`, `Relation`, `Event`,
//! `Foreshadowing`, their enums and connections. References to story objects are IDs
//! (`novelId`, `chapterId`), never nested story types, so the subgraphs stay disjoint.

use crate::graphql::connection::{connection, cost, page_request};
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{opt_id, to_id};
use crate::graphql::{Json, call};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use znovel_domain::model as m;

/// What an entity is.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::EntityKind")]
pub enum EntityKind {
    /// A person or sentient being.
    Character,
    /// A place.
    Location,
    /// An object.
    Item,
    /// A group, sect, company, nation.
    Organization,
    /// An idea, rule, technique or magic system.
    Concept,
}

/// State of a foreshadowing thread.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::ForeshadowingStatus")]
pub enum ForeshadowingStatus {
    /// Planted, not yet paid off.
    Open,
    /// Paid off.
    Resolved,
    /// Dropped on purpose.
    Abandoned,
}

/// Who wrote a story-bible record.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::Origin")]
pub enum Origin {
    /// The author (or an extracted record the author edited: never overwritten).
    Author,
    /// Extracted from a chapter by the language model; replaced when that chapter changes.
    Extracted,
}

/// Whether a character lives.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::Vital")]
pub enum Vital {
    /// Alive.
    Alive,
    /// Dead.
    Dead,
}

/// Where a story-bible record came from: the author, or the chapter it was extracted
/// from with the span of that chapter's text that says so.
#[derive(SimpleObject)]
pub struct Provenance {
    /// Who wrote it.
    pub origin: Origin,
    /// ID of the chapter it was extracted from (kept after an author's edit).
    pub chapter_id: Option<ID>,
    /// Where the evidence starts in that chapter's content (Unicode code points).
    pub span_start: Option<i32>,
    /// Where it ends (exclusive).
    pub span_end: Option<i32>,
}

impl From<&m::Provenance> for Provenance {
    fn from(p: &m::Provenance) -> Self {
        Self {
            origin: p.origin.into(),
            chapter_id: opt_id(p.chapter_id),
            span_start: p.span_start,
            span_end: p.span_end,
        }
    }
}

/// A story-bible entry: a character, location, item, organization or concept.
pub struct Entity(pub m::Entity);

/// A story-bible entry: a character, location, item, organization or concept.
#[Object]
impl Entity {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the novel it belongs to.
    async fn novel_id(&self) -> ID {
        to_id(self.0.novel_id)
    }
    /// Canonical name, unique per novel and kind.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Other names it goes by (retrieval matches these too).
    async fn aliases(&self) -> &[String] {
        &self.0.aliases
    }
    /// What it is.
    async fn kind(&self) -> EntityKind {
        self.0.kind.into()
    }
    /// Description.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Free-form attributes (age, eye colour, cultivation level, ...), a JSON object.
    async fn attributes(&self) -> Json {
        Json::from(self.0.attributes.clone())
    }
    /// Importance 0 to 100 (protagonist ~100, passer-by ~0).
    async fn importance(&self) -> i32 {
        self.0.importance
    }
    /// Its state as of the latest recorded change ("alive", "wounded", ...).
    async fn current_state(&self) -> &str {
        &self.0.current_state
    }
    /// Seq of the first chapter it appears in.
    async fn first_chapter_seq(&self) -> Option<i32> {
        self.0.first_chapter_seq
    }
    /// Seq of the last chapter it appears in.
    async fn last_chapter_seq(&self) -> Option<i32> {
        self.0.last_chapter_seq
    }
    /// In how many chapters it appears.
    async fn appearance_count(&self) -> i32 {
        self.0.appearance_count
    }
    /// Who wrote it (an entity extraction discovered names its first chapter).
    async fn provenance(&self) -> Provenance {
        Provenance::from(&self.0.provenance)
    }
    /// Its state as the chapters up to `chapterSeq` established it: the latest state
    /// change recorded in a chapter with that seq or lower (a change tied to no chapter
    /// counts as before chapter 1); null when there is none.
    async fn state_at(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A chapter seq (0 or more): the state as of the end of that chapter.")]
        chapter_seq: i32,
    ) -> async_graphql::Result<Option<EntityState>> {
        let (s, actor) = call(ctx)?;
        s.memory
            .entity_state_at(&actor, self.0.id, i64::from(chapter_seq))
            .await
            .gql()
            .map(|st| st.map(EntityState))
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Its state history, in the order it was recorded.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn states(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<EntityStateConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let page = s.memory.entity_states(&actor, self.0.id, req).await.gql()?;
        Ok(EntityStateConnection::new(page, &req))
    }
    /// Its relations, whichever side it is on.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn relations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<RelationConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let page = s.memory.relations(&actor, self.0.id, req).await.gql()?;
        Ok(RelationConnection::new(page, &req))
    }
}

/// One change of an entity's state ("alive → dead in chapter 12").
pub struct EntityState(pub m::EntityState);

/// One change of an entity's state ("alive → dead in chapter 12").
#[Object]
impl EntityState {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the entity.
    async fn entity_id(&self) -> ID {
        to_id(self.0.entity_id)
    }
    /// The entity.
    async fn entity(&self, ctx: &Context<'_>) -> async_graphql::Result<Entity> {
        let (s, actor) = call(ctx)?;
        s.memory
            .entity(&actor, self.0.entity_id)
            .await
            .gql()
            .map(Entity)
    }
    /// ID of the chapter in which the change happens, if tied to one.
    async fn chapter_id(&self) -> Option<ID> {
        opt_id(self.0.chapter_id)
    }
    /// Story time of the change (ordinal in the novel's time system).
    async fn story_time(&self) -> Option<i64> {
        self.0.story_time
    }
    /// The state from then on.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// Attribute changes, a JSON object of new values.
    async fn attribute_changes(&self) -> Json {
        Json::from(self.0.attribute_changes.clone())
    }
    /// Alive or dead from then on, when the change says.
    async fn vital(&self) -> Option<Vital> {
        self.0.vital.map(Into::into)
    }
    /// ID of where the entity is from then on (a LOCATION), when the change says.
    async fn location_id(&self) -> Option<ID> {
        opt_id(self.0.location_id)
    }
    /// Where the entity is from then on.
    async fn location(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Entity>> {
        related(ctx, self.0.location_id).await
    }
    /// For an item: ID of who holds it from then on.
    async fn holder_id(&self) -> Option<ID> {
        opt_id(self.0.holder_id)
    }
    /// For an item: who holds it from then on.
    async fn holder(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Entity>> {
        related(ctx, self.0.holder_id).await
    }
    /// For an item: gone for good (lost, destroyed) from then on.
    async fn lost(&self) -> bool {
        self.0.lost
    }
    /// Injuries carried from then on ("lost his left hand").
    async fn injuries(&self) -> &[String] {
        &self.0.injuries
    }
    /// Who recorded it.
    async fn provenance(&self) -> Provenance {
        Provenance::from(&self.0.provenance)
    }
    /// When it was recorded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A directed relation between two entities of the same novel.
pub struct Relation(pub m::Relation);

/// A directed relation between two entities of the same novel.
#[Object]
impl Relation {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the novel.
    async fn novel_id(&self) -> ID {
        to_id(self.0.novel_id)
    }
    /// ID of the entity it goes from.
    async fn source_id(&self) -> ID {
        to_id(self.0.source_id)
    }
    /// The entity it goes from.
    async fn source(&self, ctx: &Context<'_>) -> async_graphql::Result<Entity> {
        let (s, actor) = call(ctx)?;
        s.memory
            .entity(&actor, self.0.source_id)
            .await
            .gql()
            .map(Entity)
    }
    /// ID of the entity it goes to.
    async fn target_id(&self) -> ID {
        to_id(self.0.target_id)
    }
    /// The entity it goes to.
    async fn target(&self, ctx: &Context<'_>) -> async_graphql::Result<Entity> {
        let (s, actor) = call(ctx)?;
        s.memory
            .entity(&actor, self.0.target_id)
            .await
            .gql()
            .map(Entity)
    }
    /// Type, lower-case free text: friend, enemy, family, lover, subordinate, ...
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// Strength 0.0 to 1.0.
    async fn strength(&self) -> f64 {
        self.0.strength
    }
    /// Description.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// ID of the chapter since which it holds.
    async fn since_chapter_id(&self) -> Option<ID> {
        opt_id(self.0.since_chapter_id)
    }
    /// Who recorded it.
    async fn provenance(&self) -> Provenance {
        Provenance::from(&self.0.provenance)
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

connection!(
    EntityConnection,
    EntityEdge,
    Entity,
    m::Entity,
    "A page of story-bible entities.",
    "An entity in a page of entities."
);
connection!(
    EntityStateConnection,
    EntityStateEdge,
    EntityState,
    m::EntityState,
    "A page of an entity's state history.",
    "A state change in a page of state history."
);
connection!(
    RelationConnection,
    RelationEdge,
    Relation,
    m::Relation,
    "A page of relations.",
    "A relation in a page of relations."
);

/// The entity an optional reference points at.
async fn related(
    ctx: &Context<'_>,
    id: Option<znovel_domain::ids::EntityId>,
) -> async_graphql::Result<Option<Entity>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let (s, actor) = call(ctx)?;
    s.memory
        .entity(&actor, id)
        .await
        .gql()
        .map(|e| Some(Entity(e)))
}
