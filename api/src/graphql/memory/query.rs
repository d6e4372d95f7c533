//! Story-bible queries, and the federation entity resolver of `Entity`.

use super::timeline::*;
use super::types::*;
use crate::graphql::call;
use crate::graphql::connection::{cost, page_request};
use crate::graphql::errors::{ResultExt, to_gql};
use crate::graphql::ids::decode;
use async_graphql::{Context, ID, Object};
use znovel_domain::Error;
use znovel_domain::model as m;
use znovel_domain::ports::{EntityFilter, TimelineFilter};

/// Story-bible queries: entities, relations, the timeline, foreshadowing.
#[derive(Default)]
pub struct MemoryQuery;

/// Story-bible queries: entities, relations, the timeline, foreshadowing.
#[Object]
impl MemoryQuery {
    /// A story-bible entity.
    async fn entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity's ID.")] id: ID,
    ) -> async_graphql::Result<Entity> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.memory.entity(&actor, id).await.gql().map(Entity)
    }

    /// A novel's story-bible entities.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn entities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "Only entities of this kind.")] kind: Option<EntityKind>,
        #[graphql(desc = "Case-insensitive substring of the name or of any alias.")] search: Option<
            String,
        >,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<EntityConnection> {
        let (s, actor) = call(ctx)?;
        let novel = decode(&novel_id, "novelId")?;
        let req = page_request(first, after.as_deref())?;
        let filter = EntityFilter {
            kind: kind.map(Into::into),
            search,
        };
        let page = s.memory.entities(&actor, novel, filter, req).await.gql()?;
        Ok(EntityConnection::new(page, &req))
    }

    /// A relation between two entities.
    async fn relation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The relation's ID.")] id: ID,
    ) -> async_graphql::Result<Relation> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.memory.relation(&actor, id).await.gql().map(Relation)
    }

    /// The relations of an entity, whichever side it is on.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn relations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity.")] entity_id: ID,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<RelationConnection> {
        let (s, actor) = call(ctx)?;
        let entity = decode(&entity_id, "entityId")?;
        let req = page_request(first, after.as_deref())?;
        let page = s.memory.relations(&actor, entity, req).await.gql()?;
        Ok(RelationConnection::new(page, &req))
    }

    /// A timeline event.
    async fn event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event's ID.")] id: ID,
    ) -> async_graphql::Result<Event> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.memory.event(&actor, id).await.gql().map(Event)
    }

    /// A novel's timeline: the events that start between two story times.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "Earliest story time (inclusive).")] from: Option<i64>,
        #[graphql(desc = "Latest story time (inclusive).")] to: Option<i64>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<EventConnection> {
        let (s, actor) = call(ctx)?;
        let novel = decode(&novel_id, "novelId")?;
        let req = page_request(first, after.as_deref())?;
        let filter = TimelineFilter { from, to };
        let page = s.memory.timeline(&actor, novel, filter, req).await.gql()?;
        Ok(EventConnection::new(page, &req))
    }

    /// A novel's foreshadowing threads. `open: true` lists OPEN threads, `open: false`
    /// RESOLVED ones; `status` selects any one status (ABANDONED included). Without
    /// either, every thread.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn foreshadowing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "true: only OPEN threads; false: only RESOLVED threads.")] open: Option<
            bool,
        >,
        #[graphql(desc = "Only threads with this status (must agree with `open`).")] status: Option<
            ForeshadowingStatus,
        >,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<ForeshadowingConnection> {
        let (s, actor) = call(ctx)?;
        let novel = decode(&novel_id, "novelId")?;
        let status = status_filter(open, status.map(Into::into)).map_err(to_gql)?;
        let req = page_request(first, after.as_deref())?;
        let page = s
            .memory
            .foreshadowing(&actor, novel, status, req)
            .await
            .gql()?;
        Ok(ForeshadowingConnection::new(page, &req))
    }
}

/// The status filter of `foreshadowing(open, status)`.
fn status_filter(
    open: Option<bool>,
    status: Option<m::ForeshadowingStatus>,
) -> Result<Option<m::ForeshadowingStatus>, Error> {
    use m::ForeshadowingStatus::{Open, Resolved};
    match (open, status) {
        (None, s) => Ok(s),
        (Some(true), None | Some(Open)) => Ok(Some(Open)),
        (Some(false), None) => Ok(Some(Resolved)),
        (Some(false), Some(s)) if s != Open => Ok(Some(s)),
        (Some(_), Some(_)) => Err(Error::invalid("status", "contradicts `open`")),
    }
}

/// Federation entity resolvers of the memory subgraph (`@key(fields: "id")` on
/// `Entity`, `Relation`, `Event` and `Foreshadowing`; `EntityState` has no lookup by id). Only merged into the memory subgraph's root, never into the gateway.
#[derive(Default)]
pub struct MemoryEntities;

/// Federation entity resolvers of the memory subgraph.
#[Object]
impl MemoryEntities {
    /// Resolves an `Entity` reference.
    #[graphql(entity)]
    async fn find_entity_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity's global ID.")] id: ID,
    ) -> async_graphql::Result<Entity> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.memory.entity(&actor, id).await.gql().map(Entity)
    }

    /// Resolves a `Relation` reference.
    #[graphql(entity)]
    async fn find_relation_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The relation's global ID.")] id: ID,
    ) -> async_graphql::Result<Relation> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.memory.relation(&actor, id).await.gql().map(Relation)
    }

    /// Resolves an `Event` reference.
    #[graphql(entity)]
    async fn find_event_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event's global ID.")] id: ID,
    ) -> async_graphql::Result<Event> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.memory.event(&actor, id).await.gql().map(Event)
    }

    /// Resolves a `Foreshadowing` reference.
    #[graphql(entity)]
    async fn find_foreshadowing_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread's global ID.")] id: ID,
    ) -> async_graphql::Result<Foreshadowing> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.memory
            .foreshadowing_by_id(&actor, id)
            .await
            .gql()
            .map(Foreshadowing)
    }
}
