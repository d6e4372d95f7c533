//! Timeline object types `Event` and `Foreshadowing` and their connections.

use super::types::{Entity, ForeshadowingStatus};
use crate::graphql::call;
use crate::graphql::connection::connection;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{opt_id, to_id};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use znovel_domain::model as m;

/// A point (or span) on the story's timeline.
pub struct Event(pub m::Event);

/// A point (or span) on the story's timeline.
#[Object]
impl Event {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the novel.
    async fn novel_id(&self) -> ID {
        to_id(self.0.novel_id)
    }
    /// ID of the chapter that tells it, if any.
    async fn chapter_id(&self) -> Option<ID> {
        opt_id(self.0.chapter_id)
    }
    /// Short title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// What happens.
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// Story time it starts (ordinal in the novel's time system).
    async fn story_time_start(&self) -> i64 {
        self.0.story_time_start
    }
    /// Story time it ends, if it spans time.
    async fn story_time_end(&self) -> Option<i64> {
        self.0.story_time_end
    }
    /// ID of where it happens (a LOCATION entity).
    async fn location_id(&self) -> Option<ID> {
        opt_id(self.0.location_id)
    }
    /// Where it happens (a LOCATION entity).
    async fn location(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Entity>> {
        let Some(id) = self.0.location_id else {
            return Ok(None);
        };
        let (s, actor) = call(ctx)?;
        s.memory
            .entity(&actor, id)
            .await
            .gql()
            .map(|e| Some(Entity(e)))
    }
    /// IDs of who and what takes part.
    async fn involved_ids(&self) -> Vec<ID> {
        self.0.involved.iter().copied().map(to_id).collect()
    }
    /// Who and what takes part.
    async fn involved(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Entity>> {
        let (s, actor) = call(ctx)?;
        let reads = self
            .0
            .involved
            .iter()
            .map(|id| s.memory.entity(&actor, *id));
        let entities = futures_util::future::try_join_all(reads).await.gql()?;
        Ok(entities.into_iter().map(Entity).collect())
    }
    /// Importance 0 to 100.
    async fn importance(&self) -> i32 {
        self.0.importance
    }
    /// Who recorded it.
    async fn provenance(&self) -> super::Provenance {
        super::Provenance::from(&self.0.provenance)
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

/// A foreshadowing thread: something planted that must pay off.
pub struct Foreshadowing(pub m::Foreshadowing);

/// A foreshadowing thread: something planted that must pay off.
#[Object]
impl Foreshadowing {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the novel.
    async fn novel_id(&self) -> ID {
        to_id(self.0.novel_id)
    }
    /// Short title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// What was planted.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// ID of the chapter it was planted in.
    async fn planted_chapter_id(&self) -> Option<ID> {
        opt_id(self.0.planted_chapter_id)
    }
    /// How it is expected to pay off.
    async fn expected_payoff(&self) -> &str {
        &self.0.expected_payoff
    }
    /// ID of the chapter that resolved it.
    async fn resolved_chapter_id(&self) -> Option<ID> {
        opt_id(self.0.resolved_chapter_id)
    }
    /// State.
    async fn status(&self) -> ForeshadowingStatus {
        self.0.status.into()
    }
    /// Who recorded it.
    async fn provenance(&self) -> super::Provenance {
        super::Provenance::from(&self.0.provenance)
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
    EventConnection,
    EventEdge,
    Event,
    m::Event,
    "A page of timeline events.",
    "An event in a page of timeline events."
);
connection!(
    ForeshadowingConnection,
    ForeshadowingEdge,
    Foreshadowing,
    m::Foreshadowing,
    "A page of foreshadowing threads.",
    "A thread in a page of foreshadowing threads."
);
