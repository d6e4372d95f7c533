//! Memory service: the story bible (entities and their states, relations, events,
//! foreshadowing).

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
#[derive(Debug, Clone)]
pub struct RecordEntityState {
    /// The entity.
    pub entity_id: EntityId,
    /// The chapter in which it changes.
    pub chapter_id: Option<ChapterId>,
    /// Story time of the change.
    pub story_time: Option<i64>,
    /// The new state.
    pub state: String,
    /// Attribute changes (a JSON object merged into the entity's attributes).
    pub attribute_changes: Option<serde_json::Value>,
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
}

impl MemoryService {
    /// Builds the service.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
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
            created_at: t,
            updated_at: t,
        };
        self.store
            .insert_entity(&e)
            .await
            .map_err(|err| dup_name(err, &e))?;
        audit(&*self.store, actor, "entity.create", "Entity", e.id).await;
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
        self.store
            .update_entity(&e)
            .await
            .map_err(|err| dup_name(err, &e))?;
        audit(&*self.store, actor, "entity.update", "Entity", e.id).await;
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
        let state = text::required("state", &input.state, MAX_TEXT)?;
        let changes = json_object(
            "attributeChanges",
            input
                .attribute_changes
                .unwrap_or_else(|| serde_json::json!({})),
        )?;
        let mut e = self.entity(actor, input.entity_id).await?;
        self.chapter_in(actor, "chapterId", input.chapter_id, e.novel_id)
            .await?;
        if let (Some(attrs), Some(ch)) = (e.attributes.as_object_mut(), changes.as_object()) {
            for (k, v) in ch {
                attrs.insert(k.clone(), v.clone());
            }
        }
        e.current_state = state.clone();
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
            created_at: t,
        };
        self.store
            .insert_entity_state(&s, &e)
            .await
            .or_not_found("entity")?;
        audit(&*self.store, actor, "entity.state", "Entity", e.id).await;
        Ok((s, e))
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
            created_at: t,
            updated_at: t,
        };
        self.check_event(actor, &ev).await?;
        self.store.insert_event(&ev).await?;
        audit(&*self.store, actor, "event.create", "Event", ev.id).await;
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
        self.store.update_event(&ev).await.or_not_found("event")?;
        audit(&*self.store, actor, "event.update", "Event", ev.id).await;
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
        Ok(f)
    }
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
