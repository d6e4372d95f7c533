//! Story-bible mutations: entities and their states, relations, events, foreshadowing.

use super::inputs::*;
use super::{Entity, EntityState, Event, Foreshadowing, Relation};
use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{decode, decode_list, decode_opt};
use async_graphql::{Context, MaybeUndefined, Object};
use znovel_domain::model::ForeshadowingStatus;
use znovel_domain::services as svc;

/// Story-bible mutations. All need MEMBER.
#[derive(Default)]
pub struct MemoryMutation;

/// Story-bible mutations. All need MEMBER.
#[Object]
impl MemoryMutation {
    /// Adds an entity to a novel's story bible.
    #[tracing::instrument(skip_all, name = "createEntity")]
    async fn create_entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new entity.")] input: CreateEntityInput,
    ) -> async_graphql::Result<CreateEntityPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateEntity {
            novel_id: decode(&input.novel_id, "novelId")?,
            name: input.name,
            kind: input.kind.into(),
            aliases: input.aliases,
            description: input.description,
            attributes: input.attributes.map(|j| j.0),
            importance: input.importance,
            current_state: input.current_state,
        };
        let entity = Entity(s.memory.create_entity(&actor, input).await.gql()?);
        Ok(CreateEntityPayload { entity })
    }

    /// Changes an entity.
    #[tracing::instrument(skip_all, name = "updateEntity")]
    async fn update_entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity and the fields to change.")] input: UpdateEntityInput,
    ) -> async_graphql::Result<UpdateEntityPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let change = svc::UpdateEntity {
            name: input.name,
            kind: input.kind.map(Into::into),
            aliases: input.aliases,
            description: input.description,
            attributes: input.attributes.map(|j| j.0),
            importance: input.importance,
        };
        let entity = Entity(s.memory.update_entity(&actor, id, change).await.gql()?);
        Ok(UpdateEntityPayload { entity })
    }

    /// Deletes an entity with its states and relations.
    #[tracing::instrument(skip_all, name = "deleteEntity")]
    async fn delete_entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity to delete.")] input: DeleteEntityInput,
    ) -> async_graphql::Result<DeleteEntityPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let entity = Entity(s.memory.delete_entity(&actor, id).await.gql()?);
        Ok(DeleteEntityPayload { entity })
    }

    /// Records a change of an entity's state; the entity's current state and attributes
    /// follow.
    #[tracing::instrument(skip_all, name = "recordEntityState")]
    async fn record_entity_state(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity and its new state.")] input: RecordEntityStateInput,
    ) -> async_graphql::Result<RecordEntityStatePayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::RecordEntityState {
            entity_id: decode(&input.entity_id, "entityId")?,
            chapter_id: decode_opt(input.chapter_id.as_ref(), "chapterId")?,
            story_time: input.story_time,
            state: input.state,
            attribute_changes: input.attribute_changes.map(|j| j.0),
            vital: input.vital.map(Into::into),
            location_id: decode_opt(input.location_id.as_ref(), "locationId")?,
            holder_id: decode_opt(input.holder_id.as_ref(), "holderId")?,
            lost: input.lost,
            injuries: input.injuries,
        };
        let (state, entity) = s.memory.record_entity_state(&actor, input).await.gql()?;
        Ok(RecordEntityStatePayload {
            entity_state: EntityState(state),
            entity: Entity(entity),
        })
    }

    /// Changes a recorded state change. An extracted one becomes the author's: a later
    /// extraction from its chapter never overwrites it.
    #[tracing::instrument(skip_all, name = "updateEntityState")]
    async fn update_entity_state(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The state change and what to change.")] input: UpdateEntityStateInput,
    ) -> async_graphql::Result<UpdateEntityStatePayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let change = svc::UpdateEntityState {
            state: input.state,
            chapter_id: decode_opt(input.chapter_id.as_ref(), "chapterId")?,
            story_time: input.story_time,
            vital: maybe(input.vital, |v| Ok(v.into()))?,
            location_id: maybe(input.location_id, |v| decode(&v, "locationId"))?,
            holder_id: maybe(input.holder_id, |v| decode(&v, "holderId"))?,
            lost: input.lost,
            injuries: input.injuries,
        };
        let state = s
            .memory
            .update_entity_state(&actor, id, change)
            .await
            .gql()?;
        Ok(UpdateEntityStatePayload {
            entity_state: EntityState(state),
        })
    }

    /// Deletes a recorded state change (the entity's current state stays as it is).
    #[tracing::instrument(skip_all, name = "deleteEntityState")]
    async fn delete_entity_state(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The state change to delete.")] input: DeleteEntityStateInput,
    ) -> async_graphql::Result<DeleteEntityStatePayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let state = s.memory.delete_entity_state(&actor, id).await.gql()?;
        Ok(DeleteEntityStatePayload {
            entity_state: EntityState(state),
        })
    }

    /// Relates two entities of one novel.
    #[tracing::instrument(skip_all, name = "createRelation")]
    async fn create_relation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new relation.")] input: CreateRelationInput,
    ) -> async_graphql::Result<CreateRelationPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateRelation {
            source_id: decode(&input.source_id, "sourceId")?,
            target_id: decode(&input.target_id, "targetId")?,
            kind: input.kind,
            strength: input.strength,
            description: input.description,
            since_chapter_id: decode_opt(input.since_chapter_id.as_ref(), "sinceChapterId")?,
        };
        let relation = Relation(s.memory.create_relation(&actor, input).await.gql()?);
        Ok(CreateRelationPayload { relation })
    }

    /// Changes a relation.
    #[tracing::instrument(skip_all, name = "updateRelation")]
    async fn update_relation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The relation and the fields to change.")] input: UpdateRelationInput,
    ) -> async_graphql::Result<UpdateRelationPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let change = svc::UpdateRelation {
            kind: input.kind,
            strength: input.strength,
            description: input.description,
            since_chapter_id: decode_opt(input.since_chapter_id.as_ref(), "sinceChapterId")?,
        };
        let relation = Relation(s.memory.update_relation(&actor, id, change).await.gql()?);
        Ok(UpdateRelationPayload { relation })
    }

    /// Deletes a relation.
    #[tracing::instrument(skip_all, name = "deleteRelation")]
    async fn delete_relation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The relation to delete.")] input: DeleteRelationInput,
    ) -> async_graphql::Result<DeleteRelationPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let relation = Relation(s.memory.delete_relation(&actor, id).await.gql()?);
        Ok(DeleteRelationPayload { relation })
    }

    /// Adds an event to a novel's timeline.
    #[tracing::instrument(skip_all, name = "createEvent")]
    async fn create_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new event.")] input: CreateEventInput,
    ) -> async_graphql::Result<CreateEventPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateEvent {
            novel_id: decode(&input.novel_id, "novelId")?,
            chapter_id: decode_opt(input.chapter_id.as_ref(), "chapterId")?,
            title: input.title,
            summary: input.summary,
            story_time_start: input.story_time_start,
            story_time_end: input.story_time_end,
            location_id: decode_opt(input.location_id.as_ref(), "locationId")?,
            involved: decode_list(&input.involved_ids, "involvedIds")?,
            importance: input.importance,
        };
        let event = Event(s.memory.create_event(&actor, input).await.gql()?);
        Ok(CreateEventPayload { event })
    }

    /// Changes an event.
    #[tracing::instrument(skip_all, name = "updateEvent")]
    async fn update_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event and the fields to change.")] input: UpdateEventInput,
    ) -> async_graphql::Result<UpdateEventPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let involved = match &input.involved_ids {
            Some(ids) => Some(decode_list(ids, "involvedIds")?),
            None => None,
        };
        let change = svc::UpdateEvent {
            chapter_id: decode_opt(input.chapter_id.as_ref(), "chapterId")?,
            title: input.title,
            summary: input.summary,
            story_time_start: input.story_time_start,
            story_time_end: input.story_time_end,
            location_id: decode_opt(input.location_id.as_ref(), "locationId")?,
            involved,
            importance: input.importance,
        };
        let event = Event(s.memory.update_event(&actor, id, change).await.gql()?);
        Ok(UpdateEventPayload { event })
    }

    /// Deletes an event.
    #[tracing::instrument(skip_all, name = "deleteEvent")]
    async fn delete_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event to delete.")] input: DeleteEventInput,
    ) -> async_graphql::Result<DeleteEventPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let event = Event(s.memory.delete_event(&actor, id).await.gql()?);
        Ok(DeleteEventPayload { event })
    }

    /// Plants a foreshadowing thread (status OPEN).
    #[tracing::instrument(skip_all, name = "createForeshadowing")]
    async fn create_foreshadowing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new thread.")] input: CreateForeshadowingInput,
    ) -> async_graphql::Result<CreateForeshadowingPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateForeshadowing {
            novel_id: decode(&input.novel_id, "novelId")?,
            title: input.title,
            description: input.description,
            planted_chapter_id: decode_opt(input.planted_chapter_id.as_ref(), "plantedChapterId")?,
            expected_payoff: input.expected_payoff,
        };
        let f = Foreshadowing(s.memory.create_foreshadowing(&actor, input).await.gql()?);
        Ok(CreateForeshadowingPayload { foreshadowing: f })
    }

    /// Changes a foreshadowing thread.
    #[tracing::instrument(skip_all, name = "updateForeshadowing")]
    async fn update_foreshadowing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread and the fields to change.")] input: UpdateForeshadowingInput,
    ) -> async_graphql::Result<UpdateForeshadowingPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let change = svc::UpdateForeshadowing {
            title: input.title,
            description: input.description,
            planted_chapter_id: decode_opt(input.planted_chapter_id.as_ref(), "plantedChapterId")?,
            expected_payoff: input.expected_payoff,
            status: input.status.map(Into::into),
            resolved_chapter_id: decode_opt(
                input.resolved_chapter_id.as_ref(),
                "resolvedChapterId",
            )?,
        };
        let f = Foreshadowing(
            s.memory
                .update_foreshadowing(&actor, id, change)
                .await
                .gql()?,
        );
        Ok(UpdateForeshadowingPayload { foreshadowing: f })
    }

    /// Marks a thread RESOLVED by the chapter that pays it off.
    #[tracing::instrument(skip_all, name = "resolveForeshadowing")]
    async fn resolve_foreshadowing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread and its resolving chapter.")] input: ResolveForeshadowingInput,
    ) -> async_graphql::Result<ResolveForeshadowingPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let change = svc::UpdateForeshadowing {
            status: Some(ForeshadowingStatus::Resolved),
            resolved_chapter_id: Some(decode(&input.resolved_chapter_id, "resolvedChapterId")?),
            ..Default::default()
        };
        let f = Foreshadowing(
            s.memory
                .update_foreshadowing(&actor, id, change)
                .await
                .gql()?,
        );
        Ok(ResolveForeshadowingPayload { foreshadowing: f })
    }

    /// Deletes a foreshadowing thread.
    #[tracing::instrument(skip_all, name = "deleteForeshadowing")]
    async fn delete_foreshadowing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread to delete.")] input: DeleteForeshadowingInput,
    ) -> async_graphql::Result<DeleteForeshadowingPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let f = Foreshadowing(s.memory.delete_foreshadowing(&actor, id).await.gql()?);
        Ok(DeleteForeshadowingPayload { foreshadowing: f })
    }
}

/// An optional input that `null` clears: `None` leaves it, `Some(None)` clears it.
fn maybe<T, U>(
    v: MaybeUndefined<T>,
    f: impl FnOnce(T) -> async_graphql::Result<U>,
) -> async_graphql::Result<Option<Option<U>>> {
    Ok(match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(f(v)?)),
    })
}
