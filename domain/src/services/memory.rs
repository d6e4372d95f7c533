//! Memory service: the story bible (entities and their states, relations, events,
//! foreshadowing).

use super::remember::Indexer;
use super::story::json_object;
use super::{audit, now};
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::*;
use crate::model::*;
use crate::page::{Page, PageRequest};
use crate::ports::{EntityFilter, Store, TimelineFilter};
use crate::text::{self, MAX_NAME, MAX_TEXT};
use std::sync::Arc;

/// Most aliases an entity may have.
pub const MAX_ALIASES: usize = 50;

/// Input of [`MemoryService::create_entity`].
#[derive(Debug, Clone)]
pub struct CreateEntity {
    /// The novel.
    pub novel_id: NovelId,
    /// Canonical name.
    pub name: String,
    /// Kind.
    pub kind: EntityKind,
    /// Other names.
    pub aliases: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Attributes (a JSON object).
    pub attributes: Option<serde_json::Value>,
    /// Importance 0..=100; default 50.
    pub importance: Option<i64>,
    /// Initial state.
    pub current_state: Option<String>,
}

/// Input of [`MemoryService::update_entity`]: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UpdateEntity {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<EntityKind>,
    /// New aliases (replace the list).
    pub aliases: Option<Vec<String>>,
    /// New description.
    pub description: Option<String>,
    /// New attributes (replace the object).
    pub attributes: Option<serde_json::Value>,
    /// New importance.
    pub importance: Option<i64>,
}

/// Input of [`MemoryService::record_entity_state`].
#[derive(Debug, Clone, Default)]
pub struct RecordEntityState {
    /// The entity.
    pub entity_id: EntityId,
    /// The chapter in which it changes.
    pub chapter_id: Option<ChapterId>,
    /// Story time of the change.
    pub story_time: Option<i64>,
    /// The new state in words (may be empty when a structured field says it all).
    pub state: String,
    /// Attribute changes (a JSON object merged into the entity's attributes).
    pub attribute_changes: Option<serde_json::Value>,
    /// Alive or dead from then on.
    pub vital: Option<Vital>,
    /// Where the entity is from then on (a LOCATION of the same novel).
    pub location_id: Option<EntityId>,
    /// Who holds the item from then on (an entity of the same novel).
    pub holder_id: Option<EntityId>,
    /// The item is gone for good (lost, destroyed) from then on.
    pub lost: bool,
    /// Injuries carried from then on.
    pub injuries: Vec<String>,
}

/// Input of [`MemoryService::update_entity_state`]: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UpdateEntityState {
    /// New state text.
    pub state: Option<String>,
    /// New chapter.
    pub chapter_id: Option<ChapterId>,
    /// New story time.
    pub story_time: Option<i64>,
    /// New vital status (`Some(None)` clears it).
    pub vital: Option<Option<Vital>>,
    /// New location (`Some(None)` clears it).
    pub location_id: Option<Option<EntityId>>,
    /// New holder (`Some(None)` clears it).
    pub holder_id: Option<Option<EntityId>>,
    /// New lost flag.
    pub lost: Option<bool>,
    /// New injuries (replace the list).
    pub injuries: Option<Vec<String>>,
}

/// Input of [`MemoryService::create_relation`].
#[derive(Debug, Clone)]
pub struct CreateRelation {
    /// From.
    pub source_id: EntityId,
    /// To.
    pub target_id: EntityId,
    /// Type (friend, enemy, family, lover, subordinate, ...).
    pub kind: String,
    /// Strength 0..=1; default 0.5.
    pub strength: Option<f64>,
    /// Description.
    pub description: Option<String>,
    /// Since which chapter.
    pub since_chapter_id: Option<ChapterId>,
}

/// Input of [`MemoryService::update_relation`].
#[derive(Debug, Clone, Default)]
pub struct UpdateRelation {
    /// New type.
    pub kind: Option<String>,
    /// New strength.
    pub strength: Option<f64>,
    /// New description.
    pub description: Option<String>,
    /// New starting chapter.
    pub since_chapter_id: Option<ChapterId>,
}

/// Input of [`MemoryService::create_event`].
#[derive(Debug, Clone)]
pub struct CreateEvent {
    /// The novel.
    pub novel_id: NovelId,
    /// The chapter that tells it.
    pub chapter_id: Option<ChapterId>,
    /// Title.
    pub title: String,
    /// What happens.
    pub summary: Option<String>,
    /// Story time it starts.
    pub story_time_start: i64,
    /// Story time it ends.
    pub story_time_end: Option<i64>,
    /// Where (a LOCATION entity).
    pub location_id: Option<EntityId>,
    /// Who and what takes part.
    pub involved: Vec<EntityId>,
    /// Importance 0..=100; default 50.
    pub importance: Option<i64>,
}

/// Input of [`MemoryService::update_event`].
#[derive(Debug, Clone, Default)]
pub struct UpdateEvent {
    /// New chapter.
    pub chapter_id: Option<ChapterId>,
    /// New title.
    pub title: Option<String>,
    /// New summary.
    pub summary: Option<String>,
    /// New start.
    pub story_time_start: Option<i64>,
    /// New end.
    pub story_time_end: Option<i64>,
    /// New location.
    pub location_id: Option<EntityId>,
    /// New participants (replace the list).
    pub involved: Option<Vec<EntityId>>,
    /// New importance.
    pub importance: Option<i64>,
}

/// Input of [`MemoryService::create_foreshadowing`].
#[derive(Debug, Clone)]
pub struct CreateForeshadowing {
    /// The novel.
    pub novel_id: NovelId,
    /// Title.
    pub title: String,
    /// What is planted.
    pub description: Option<String>,
    /// Where it is planted.
    pub planted_chapter_id: Option<ChapterId>,
    /// How it should pay off.
    pub expected_payoff: Option<String>,
}

/// Input of [`MemoryService::update_foreshadowing`].
#[derive(Debug, Clone, Default)]
pub struct UpdateForeshadowing {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New planted chapter.
    pub planted_chapter_id: Option<ChapterId>,
    /// New expected payoff.
    pub expected_payoff: Option<String>,
    /// New status; RESOLVED needs a resolving chapter.
    pub status: Option<ForeshadowingStatus>,
    /// The chapter that pays it off.
    pub resolved_chapter_id: Option<ChapterId>,
}

fn importance(v: Option<i64>) -> Result<i32, Error> {
    Ok(text::in_range("importance", v.unwrap_or(50), 0, 100)? as i32)
}

fn aliases(list: Vec<String>) -> Result<Vec<String>, Error> {
    if list.len() > MAX_ALIASES {
        return Err(Error::invalid(
            "aliases",
            format!("at most {MAX_ALIASES} aliases"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for a in list {
        let a = text::required("aliases", &a, MAX_NAME)?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Removes repeated ids, keeping the first occurrence's position.
fn unique(ids: Vec<EntityId>) -> Vec<EntityId> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

fn relation_kind(v: &str) -> Result<String, Error> {
    Ok(text::required("kind", v, 50)?.to_lowercase())
}

fn strength(v: f64) -> Result<f64, Error> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::invalid("strength", "must be between 0 and 1"))
    }
}

/// The story bible.
#[derive(Clone)]
pub struct MemoryService {
    store: Arc<dyn Store>,
    indexer: Option<Indexer>,
}

/// Logs a failed index write: the bible row is the record and stays written; the index
/// catches up with `znovel reindex` or the next change.
fn indexed(result: Result<(), Error>, what: &str) {
    if let Err(e) = result {
        tracing::warn!(error = %e, what, "could not update the memory index");
    }
}

/// Most injuries one state change may list.
const MAX_INJURIES: usize = 20;

impl MemoryService {
    /// Builds the service.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            indexer: None,
        }
    }

    /// The same service, keeping the memory index up to date with every change.
    pub fn with_indexer(mut self, indexer: Indexer) -> Self {
        self.indexer = Some(indexer);
        self
    }

    async fn reindex_entity(&self, e: &Entity) {
        if let Some(ix) = &self.indexer {
            indexed(ix.entity(e).await, "entity");
        }
    }

    async fn forget(&self, tenant: TenantId, novel: NovelId, source: uuid::Uuid) {
        if let Some(ix) = &self.indexer {
            indexed(ix.forget(tenant, novel, source).await, "forget");
        }
    }

    /// Checks a referenced entity of the novel is of one of `kinds`.
    async fn entity_of_kind(
        &self,
        actor: &Actor,
        field: &str,
        id: Option<EntityId>,
        novel: NovelId,
        kinds: &[EntityKind],
    ) -> Result<(), Error> {
        if let Some(id) = id {
            let e = self.entity_in(actor, field, id, novel).await?;
            if !kinds.contains(&e.kind) {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                return Err(Error::invalid(
                    field,
                    format!("must be an entity of kind {}", names.join(" or ")),
                ));
            }
        }
        Ok(())
    }

    async fn novel(&self, actor: &Actor, id: NovelId) -> Result<Novel, Error> {
        self.store
            .get_novel(actor.tenant_id, id)
            .await
            .or_not_found("novel")
    }

    /// Checks that a referenced chapter exists and belongs to `novel`.
    async fn chapter_in(
        &self,
        actor: &Actor,
        field: &str,
        id: Option<ChapterId>,
        novel: NovelId,
    ) -> Result<(), Error> {
        if let Some(id) = id {
            let c = self
                .store
                .get_chapter(actor.tenant_id, id)
                .await
                .or_not_found("chapter")?;
            if c.novel_id != novel {
                return Err(Error::invalid(
                    field,
                    "the chapter belongs to another novel",
                ));
            }
        }
        Ok(())
    }

    /// Checks that a referenced entity exists and belongs to `novel`.
    async fn entity_in(
        &self,
        actor: &Actor,
        field: &str,
        id: EntityId,
        novel: NovelId,
    ) -> Result<Entity, Error> {
        let e = self.entity(actor, id).await?;
        if e.novel_id != novel {
            return Err(Error::invalid(field, "the entity belongs to another novel"));
        }
        Ok(e)
    }

    /// Creates an entity. Needs MEMBER.
    pub async fn create_entity(&self, actor: &Actor, input: CreateEntity) -> Result<Entity, Error> {
        actor.require_write()?;
        let name = text::required("name", &input.name, MAX_NAME)?;
        let aliases = aliases(input.aliases)?;
        let attributes = json_object(
            "attributes",
            input.attributes.unwrap_or_else(|| serde_json::json!({})),
        )?;
        let novel = self.novel(actor, input.novel_id).await?;
        let t = now();
        let e = Entity {
            id: EntityId::new(),
            tenant_id: actor.tenant_id,
            novel_id: novel.id,
            name,
            aliases,
            kind: input.kind,
            description: text::bounded(
                "description",
                input.description.as_deref().unwrap_or(""),
                MAX_TEXT,
            )?,
            attributes,
            importance: importance(input.importance)?,
            current_state: text::bounded(
                "currentState",
                input.current_state.as_deref().unwrap_or(""),
                MAX_TEXT,
            )?,
            first_chapter_seq: None,
            last_chapter_seq: None,
            appearance_count: 0,
            provenance: Provenance::default(),
            created_at: t,
            updated_at: t,
        };
        self.store
            .insert_entity(&e)
            .await
            .map_err(|err| dup_name(err, &e))?;
        audit(&*self.store, actor, "entity.create", "Entity", e.id).await;
        self.reindex_entity(&e).await;
        Ok(e)
    }

    /// Reads an entity.
    pub async fn entity(&self, actor: &Actor, id: EntityId) -> Result<Entity, Error> {
        self.store
            .get_entity(actor.tenant_id, id)
            .await
            .or_not_found("entity")
    }

    /// Lists a novel's entities.
    pub async fn entities(
        &self,
        actor: &Actor,
        novel: NovelId,
        filter: EntityFilter,
        page: PageRequest,
    ) -> Result<Page<Entity>, Error> {
        self.novel(actor, novel).await?;
        let filter = EntityFilter {
            search: filter
                .search
                .map(|s| text::bounded("search", s.trim(), MAX_NAME))
                .transpose()?
                .filter(|s| !s.is_empty()),
            ..filter
        };
        Ok(self
            .store
            .list_entities(actor.tenant_id, novel, &filter, page)
            .await?)
    }

    /// Changes an entity. Needs MEMBER.
    pub async fn update_entity(
        &self,
        actor: &Actor,
        id: EntityId,
        input: UpdateEntity,
    ) -> Result<Entity, Error> {
        actor.require_write()?;
        let mut e = self.entity(actor, id).await?;
        if let Some(v) = input.name {
            e.name = text::required("name", &v, MAX_NAME)?;
        }
        if let Some(v) = input.kind {
            e.kind = v;
        }
        if let Some(v) = input.aliases {
            e.aliases = aliases(v)?;
        }
        if let Some(v) = input.description {
            e.description = text::bounded("description", &v, MAX_TEXT)?;
        }
        if let Some(v) = input.attributes {
            e.attributes = json_object("attributes", v)?;
        }
        if input.importance.is_some() {
            e.importance = importance(input.importance)?;
        }
        e.updated_at = now();
        e.provenance = e.provenance.edited();
        self.store
            .update_entity(&e)
            .await
            .map_err(|err| dup_name(err, &e))?;
        audit(&*self.store, actor, "entity.update", "Entity", e.id).await;
        self.reindex_entity(&e).await;
        Ok(e)
    }

    /// Deletes an entity with its states and relations. Needs MEMBER.
    pub async fn delete_entity(&self, actor: &Actor, id: EntityId) -> Result<Entity, Error> {
        actor.require_write()?;
        let e = self.entity(actor, id).await?;
        self.store
            .delete_entity(actor.tenant_id, id)
            .await
            .or_not_found("entity")?;
        audit(&*self.store, actor, "entity.delete", "Entity", id).await;
        self.forget(e.tenant_id, e.novel_id, id.as_uuid()).await;
        Ok(e)
    }

    /// Records a change of an entity's state; the entity's current state and attributes
    /// follow. Needs MEMBER.
    pub async fn record_entity_state(
        &self,
        actor: &Actor,
        input: RecordEntityState,
    ) -> Result<(EntityState, Entity), Error> {
        actor.require_write()?;
        let structured = input.vital.is_some()
            || input.location_id.is_some()
            || input.holder_id.is_some()
            || input.lost
            || !input.injuries.is_empty();
        let state = if structured {
            text::bounded("state", input.state.trim(), MAX_TEXT)?
        } else {
            text::required("state", &input.state, MAX_TEXT)?
        };
        let injuries = injuries(input.injuries)?;
        let changes = json_object(
            "attributeChanges",
            input
                .attribute_changes
                .unwrap_or_else(|| serde_json::json!({})),
        )?;
        let mut e = self.entity(actor, input.entity_id).await?;
        self.chapter_in(actor, "chapterId", input.chapter_id, e.novel_id)
            .await?;
        self.entity_of_kind(
            actor,
            "locationId",
            input.location_id,
            e.novel_id,
            &[EntityKind::Location],
        )
        .await?;
        self.entity_of_kind(
            actor,
            "holderId",
            input.holder_id,
            e.novel_id,
            &[
                EntityKind::Character,
                EntityKind::Organization,
                EntityKind::Location,
            ],
        )
        .await?;
        if let (Some(attrs), Some(ch)) = (e.attributes.as_object_mut(), changes.as_object()) {
            for (k, v) in ch {
                attrs.insert(k.clone(), v.clone());
            }
        }
        if !state.is_empty() {
            e.current_state = state.clone();
        }
        let t = now();
        e.updated_at = t;
        let s = EntityState {
            id: EntityStateId::new(),
            tenant_id: actor.tenant_id,
            entity_id: e.id,
            chapter_id: input.chapter_id,
            story_time: input.story_time,
            state,
            attribute_changes: changes,
            vital: input.vital,
            location_id: input.location_id,
            holder_id: input.holder_id,
            lost: input.lost,
            injuries,
            provenance: Provenance::default(),
            created_at: t,
        };
        self.store
            .insert_entity_state(&s, &e)
            .await
            .or_not_found("entity")?;
        audit(&*self.store, actor, "entity.state", "Entity", e.id).await;
        if let Some(ix) = &self.indexer {
            indexed(ix.entity_state(&s, &e).await, "entity state");
        }
        Ok((s, e))
    }

    /// Reads one state change.
    pub async fn entity_state(
        &self,
        actor: &Actor,
        id: EntityStateId,
    ) -> Result<EntityState, Error> {
        self.store
            .get_entity_state(actor.tenant_id, id)
            .await
            .or_not_found("entity state")
    }

    /// Changes a recorded state change (an extracted one becomes the author's: later
    /// extraction never overwrites it). Needs MEMBER.
    pub async fn update_entity_state(
        &self,
        actor: &Actor,
        id: EntityStateId,
        input: UpdateEntityState,
    ) -> Result<EntityState, Error> {
        actor.require_write()?;
        let mut s = self.entity_state(actor, id).await?;
        let e = self.entity(actor, s.entity_id).await?;
        if let Some(v) = input.state {
            s.state = text::bounded("state", v.trim(), MAX_TEXT)?;
        }
        if let Some(c) = input.chapter_id {
            self.chapter_in(actor, "chapterId", Some(c), e.novel_id)
                .await?;
            s.chapter_id = Some(c);
        }
        if input.story_time.is_some() {
            s.story_time = input.story_time;
        }
        if let Some(v) = input.vital {
            s.vital = v;
        }
        if let Some(l) = input.location_id {
            self.entity_of_kind(actor, "locationId", l, e.novel_id, &[EntityKind::Location])
                .await?;
            s.location_id = l;
        }
        if let Some(h) = input.holder_id {
            self.entity_of_kind(
                actor,
                "holderId",
                h,
                e.novel_id,
                &[
                    EntityKind::Character,
                    EntityKind::Organization,
                    EntityKind::Location,
                ],
            )
            .await?;
            s.holder_id = h;
        }
        if let Some(v) = input.lost {
            s.lost = v;
        }
        if let Some(v) = input.injuries {
            s.injuries = injuries(v)?;
        }
        s.provenance = s.provenance.edited();
        self.store
            .update_entity_state(&s)
            .await
            .or_not_found("entity state")?;
        audit(
            &*self.store,
            actor,
            "entity.state.update",
            "EntityState",
            s.id,
        )
        .await;
        if let Some(ix) = &self.indexer {
            indexed(ix.entity_state(&s, &e).await, "entity state");
        }
        Ok(s)
    }

    /// Deletes a recorded state change. Needs MEMBER.
    pub async fn delete_entity_state(
        &self,
        actor: &Actor,
        id: EntityStateId,
    ) -> Result<EntityState, Error> {
        actor.require_write()?;
        let s = self.entity_state(actor, id).await?;
        let e = self.entity(actor, s.entity_id).await?;
        self.store
            .delete_entity_state(actor.tenant_id, id)
            .await
            .or_not_found("entity state")?;
        audit(
            &*self.store,
            actor,
            "entity.state.delete",
            "EntityState",
            id,
        )
        .await;
        self.forget(e.tenant_id, e.novel_id, id.as_uuid()).await;
        Ok(s)
    }

    /// The entity's state as the chapters up to `chapter_seq` established it: its latest
    /// state change recorded in a chapter with that seq or lower (a change tied to no
    /// chapter counts as before chapter 1). `None` when there is none.
    pub async fn entity_state_at(
        &self,
        actor: &Actor,
        entity: EntityId,
        chapter_seq: i64,
    ) -> Result<Option<EntityState>, Error> {
        let seq = text::in_range("chapterSeq", chapter_seq, 0, i64::from(i32::MAX))? as i32;
        self.entity(actor, entity).await?;
        Ok(self
            .store
            .entity_states_as_of(actor.tenant_id, &[entity], seq)
            .await?
            .into_iter()
            .next())
    }

    /// Lists an entity's state history.
    pub async fn entity_states(
        &self,
        actor: &Actor,
        entity: EntityId,
        page: PageRequest,
    ) -> Result<Page<EntityState>, Error> {
        self.entity(actor, entity).await?;
        Ok(self
            .store
            .list_entity_states(actor.tenant_id, entity, page)
            .await?)
    }

    /// Creates a relation between two entities of one novel. Needs MEMBER.
    pub async fn create_relation(
        &self,
        actor: &Actor,
        input: CreateRelation,
    ) -> Result<Relation, Error> {
        actor.require_write()?;
        let kind = relation_kind(&input.kind)?;
        let strength = strength(input.strength.unwrap_or(0.5))?;
        let description = text::bounded(
            "description",
            input.description.as_deref().unwrap_or(""),
            MAX_TEXT,
        )?;
        if input.source_id == input.target_id {
            return Err(Error::invalid(
                "targetId",
                "an entity cannot relate to itself",
            ));
        }
        let source = self.entity(actor, input.source_id).await?;
        self.entity_in(actor, "targetId", input.target_id, source.novel_id)
            .await?;
        self.chapter_in(
            actor,
            "sinceChapterId",
            input.since_chapter_id,
            source.novel_id,
        )
        .await?;
        let t = now();
        let r = Relation {
            id: RelationId::new(),
            tenant_id: actor.tenant_id,
            novel_id: source.novel_id,
            source_id: input.source_id,
            target_id: input.target_id,
            kind,
            strength,
            description,
            since_chapter_id: input.since_chapter_id,
            provenance: Provenance::default(),
            created_at: t,
            updated_at: t,
        };
        self.store.insert_relation(&r).await.map_err(|e| match e {
            crate::StoreError::Conflict(_) => Error::Conflict(format!(
                "a '{}' relation between these entities already exists",
                r.kind
            )),
            other => other.into(),
        })?;
        audit(&*self.store, actor, "relation.create", "Relation", r.id).await;
        if let Some(ix) = &self.indexer {
            indexed(ix.relation(&r).await, "relation");
        }
        Ok(r)
    }

    /// Reads a relation.
    pub async fn relation(&self, actor: &Actor, id: RelationId) -> Result<Relation, Error> {
        self.store
            .get_relation(actor.tenant_id, id)
            .await
            .or_not_found("relation")
    }

    /// Lists the relations of an entity (either side).
    pub async fn relations(
        &self,
        actor: &Actor,
        entity: EntityId,
        page: PageRequest,
    ) -> Result<Page<Relation>, Error> {
        self.entity(actor, entity).await?;
        Ok(self
            .store
            .list_relations(actor.tenant_id, entity, page)
            .await?)
    }

    /// Changes a relation. Needs MEMBER.
    pub async fn update_relation(
        &self,
        actor: &Actor,
        id: RelationId,
        input: UpdateRelation,
    ) -> Result<Relation, Error> {
        actor.require_write()?;
        let mut r = self.relation(actor, id).await?;
        if let Some(v) = input.kind {
            r.kind = relation_kind(&v)?;
        }
        if let Some(v) = input.strength {
            r.strength = strength(v)?;
        }
        if let Some(v) = input.description {
            r.description = text::bounded("description", &v, MAX_TEXT)?;
        }
        if input.since_chapter_id.is_some() {
            self.chapter_in(actor, "sinceChapterId", input.since_chapter_id, r.novel_id)
                .await?;
            r.since_chapter_id = input.since_chapter_id;
        }
        r.updated_at = now();
        r.provenance = r.provenance.edited();
        self.store.update_relation(&r).await.map_err(|e| match e {
            crate::StoreError::Conflict(_) => Error::Conflict(format!(
                "a '{}' relation between these entities already exists",
                r.kind
            )),
            crate::StoreError::NotFound => Error::NotFound {
                resource: "relation",
            },
            other => other.into(),
        })?;
        audit(&*self.store, actor, "relation.update", "Relation", r.id).await;
        if let Some(ix) = &self.indexer {
            indexed(ix.relation(&r).await, "relation");
        }
        Ok(r)
    }

    /// Deletes a relation. Needs MEMBER.
    pub async fn delete_relation(&self, actor: &Actor, id: RelationId) -> Result<Relation, Error> {
        actor.require_write()?;
        let r = self.relation(actor, id).await?;
        self.store
            .delete_relation(actor.tenant_id, id)
            .await
            .or_not_found("relation")?;
        audit(&*self.store, actor, "relation.delete", "Relation", id).await;
        self.forget(r.tenant_id, r.novel_id, id.as_uuid()).await;
        Ok(r)
    }

    async fn check_event(&self, actor: &Actor, ev: &Event) -> Result<(), Error> {
        if let Some(end) = ev.story_time_end
            && end < ev.story_time_start
        {
            return Err(Error::invalid(
                "storyTimeEnd",
                "must not be before storyTimeStart",
            ));
        }
        if ev.involved.len() > 200 {
            return Err(Error::invalid("involvedIds", "at most 200 entities"));
        }
        self.chapter_in(actor, "chapterId", ev.chapter_id, ev.novel_id)
            .await?;
        if let Some(loc) = ev.location_id {
            self.entity_in(actor, "locationId", loc, ev.novel_id)
                .await?;
        }
        for id in &ev.involved {
            self.entity_in(actor, "involvedIds", *id, ev.novel_id)
                .await?;
        }
        Ok(())
    }

    /// Adds an event to the timeline. Needs MEMBER.
    pub async fn create_event(&self, actor: &Actor, input: CreateEvent) -> Result<Event, Error> {
        actor.require_write()?;
        let title = text::required("title", &input.title, text::MAX_TITLE)?;
        let summary = text::bounded("summary", input.summary.as_deref().unwrap_or(""), MAX_TEXT)?;
        let novel = self.novel(actor, input.novel_id).await?;
        let involved = unique(input.involved);
        let t = now();
        let ev = Event {
            id: EventId::new(),
            tenant_id: actor.tenant_id,
            novel_id: novel.id,
            chapter_id: input.chapter_id,
            title,
            summary,
            story_time_start: input.story_time_start,
            story_time_end: input.story_time_end,
            location_id: input.location_id,
            involved,
            importance: importance(input.importance)?,
            provenance: Provenance::default(),
            created_at: t,
            updated_at: t,
        };
        self.check_event(actor, &ev).await?;
        self.store.insert_event(&ev).await?;
        audit(&*self.store, actor, "event.create", "Event", ev.id).await;
        if let Some(ix) = &self.indexer {
            indexed(ix.event(&ev).await, "event");
        }
        Ok(ev)
    }

    /// Reads an event.
    pub async fn event(&self, actor: &Actor, id: EventId) -> Result<Event, Error> {
        self.store
            .get_event(actor.tenant_id, id)
            .await
            .or_not_found("event")
    }

    /// The novel's timeline between two story times.
    pub async fn timeline(
        &self,
        actor: &Actor,
        novel: NovelId,
        filter: TimelineFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, Error> {
        self.novel(actor, novel).await?;
        Ok(self
            .store
            .list_events(actor.tenant_id, novel, &filter, page)
            .await?)
    }

    /// Changes an event. Needs MEMBER.
    pub async fn update_event(
        &self,
        actor: &Actor,
        id: EventId,
        input: UpdateEvent,
    ) -> Result<Event, Error> {
        actor.require_write()?;
        let mut ev = self.event(actor, id).await?;
        if input.chapter_id.is_some() {
            ev.chapter_id = input.chapter_id;
        }
        if let Some(v) = input.title {
            ev.title = text::required("title", &v, text::MAX_TITLE)?;
        }
        if let Some(v) = input.summary {
            ev.summary = text::bounded("summary", &v, MAX_TEXT)?;
        }
        if let Some(v) = input.story_time_start {
            ev.story_time_start = v;
        }
        if input.story_time_end.is_some() {
            ev.story_time_end = input.story_time_end;
        }
        if input.location_id.is_some() {
            ev.location_id = input.location_id;
        }
        if let Some(v) = input.involved {
            ev.involved = unique(v);
        }
        if input.importance.is_some() {
            ev.importance = importance(input.importance)?;
        }
        self.check_event(actor, &ev).await?;
        ev.updated_at = now();
        ev.provenance = ev.provenance.edited();
        self.store.update_event(&ev).await.or_not_found("event")?;
        audit(&*self.store, actor, "event.update", "Event", ev.id).await;
        if let Some(ix) = &self.indexer {
            indexed(ix.event(&ev).await, "event");
        }
        Ok(ev)
    }

    /// Deletes an event. Needs MEMBER.
    pub async fn delete_event(&self, actor: &Actor, id: EventId) -> Result<Event, Error> {
        actor.require_write()?;
        let ev = self.event(actor, id).await?;
        self.store
            .delete_event(actor.tenant_id, id)
            .await
            .or_not_found("event")?;
        audit(&*self.store, actor, "event.delete", "Event", id).await;
        self.forget(ev.tenant_id, ev.novel_id, id.as_uuid()).await;
        Ok(ev)
    }

    /// Plants a foreshadowing thread. Needs MEMBER.
    pub async fn create_foreshadowing(
        &self,
        actor: &Actor,
        input: CreateForeshadowing,
    ) -> Result<Foreshadowing, Error> {
        actor.require_write()?;
        let title = text::required("title", &input.title, text::MAX_TITLE)?;
        let novel = self.novel(actor, input.novel_id).await?;
        self.chapter_in(
            actor,
            "plantedChapterId",
            input.planted_chapter_id,
            novel.id,
        )
        .await?;
        let t = now();
        let f = Foreshadowing {
            id: ForeshadowingId::new(),
            tenant_id: actor.tenant_id,
            novel_id: novel.id,
            title,
            description: text::bounded(
                "description",
                input.description.as_deref().unwrap_or(""),
                MAX_TEXT,
            )?,
            planted_chapter_id: input.planted_chapter_id,
            expected_payoff: text::bounded(
                "expectedPayoff",
                input.expected_payoff.as_deref().unwrap_or(""),
                MAX_TEXT,
            )?,
            resolved_chapter_id: None,
            status: ForeshadowingStatus::Open,
            provenance: Provenance::default(),
            created_at: t,
            updated_at: t,
        };
        self.store.insert_foreshadowing(&f).await?;
        audit(
            &*self.store,
            actor,
            "foreshadowing.create",
            "Foreshadowing",
            f.id,
        )
        .await;
        if let Some(ix) = &self.indexer {
            indexed(ix.foreshadowing(&f).await, "foreshadowing");
        }
        Ok(f)
    }

    /// Reads a foreshadowing thread.
    pub async fn foreshadowing_by_id(
        &self,
        actor: &Actor,
        id: ForeshadowingId,
    ) -> Result<Foreshadowing, Error> {
        self.store
            .get_foreshadowing(actor.tenant_id, id)
            .await
            .or_not_found("foreshadowing")
    }

    /// Lists a novel's threads, optionally only open (or only closed) ones.
    pub async fn foreshadowing(
        &self,
        actor: &Actor,
        novel: NovelId,
        status: Option<ForeshadowingStatus>,
        page: PageRequest,
    ) -> Result<Page<Foreshadowing>, Error> {
        self.novel(actor, novel).await?;
        Ok(self
            .store
            .list_foreshadowing(actor.tenant_id, novel, status, page)
            .await?)
    }

    /// Changes a thread; resolving needs the resolving chapter. Needs MEMBER.
    pub async fn update_foreshadowing(
        &self,
        actor: &Actor,
        id: ForeshadowingId,
        input: UpdateForeshadowing,
    ) -> Result<Foreshadowing, Error> {
        actor.require_write()?;
        let mut f = self.foreshadowing_by_id(actor, id).await?;
        if let Some(v) = input.title {
            f.title = text::required("title", &v, text::MAX_TITLE)?;
        }
        if let Some(v) = input.description {
            f.description = text::bounded("description", &v, MAX_TEXT)?;
        }
        if input.planted_chapter_id.is_some() {
            self.chapter_in(
                actor,
                "plantedChapterId",
                input.planted_chapter_id,
                f.novel_id,
            )
            .await?;
            f.planted_chapter_id = input.planted_chapter_id;
        }
        if let Some(v) = input.expected_payoff {
            f.expected_payoff = text::bounded("expectedPayoff", &v, MAX_TEXT)?;
        }
        if input.resolved_chapter_id.is_some() {
            self.chapter_in(
                actor,
                "resolvedChapterId",
                input.resolved_chapter_id,
                f.novel_id,
            )
            .await?;
            f.resolved_chapter_id = input.resolved_chapter_id;
        }
        if let Some(s) = input.status {
            f.status = s;
        }
        match f.status {
            ForeshadowingStatus::Resolved if f.resolved_chapter_id.is_none() => {
                return Err(Error::invalid(
                    "resolvedChapterId",
                    "a RESOLVED thread needs the chapter that resolves it",
                ));
            }
            ForeshadowingStatus::Open => f.resolved_chapter_id = None,
            _ => {}
        }
        f.updated_at = now();
        f.provenance = f.provenance.edited();
        self.store
            .update_foreshadowing(&f)
            .await
            .or_not_found("foreshadowing")?;
        audit(
            &*self.store,
            actor,
            "foreshadowing.update",
            "Foreshadowing",
            f.id,
        )
        .await;
        if let Some(ix) = &self.indexer {
            indexed(ix.foreshadowing(&f).await, "foreshadowing");
        }
        Ok(f)
    }

    /// Deletes a thread. Needs MEMBER.
    pub async fn delete_foreshadowing(
        &self,
        actor: &Actor,
        id: ForeshadowingId,
    ) -> Result<Foreshadowing, Error> {
        actor.require_write()?;
        let f = self.foreshadowing_by_id(actor, id).await?;
        self.store
            .delete_foreshadowing(actor.tenant_id, id)
            .await
            .or_not_found("foreshadowing")?;
        audit(
            &*self.store,
            actor,
            "foreshadowing.delete",
            "Foreshadowing",
            id,
        )
        .await;
        self.forget(f.tenant_id, f.novel_id, id.as_uuid()).await;
        Ok(f)
    }
}

fn injuries(list: Vec<String>) -> Result<Vec<String>, Error> {
    if list.len() > MAX_INJURIES {
        return Err(Error::invalid(
            "injuries",
            format!("at most {MAX_INJURIES} injuries"),
        ));
    }
    list.iter()
        .map(|i| text::required("injuries", i, MAX_NAME))
        .collect()
}

fn dup_name(e: crate::StoreError, entity: &Entity) -> Error {
    match e {
        crate::StoreError::Conflict(_) => Error::Conflict(format!(
            "a {} named '{}' already exists in this novel",
            entity.kind, entity.name
        )),
        crate::StoreError::NotFound => Error::NotFound { resource: "entity" },
        other => other.into(),
    }
}
