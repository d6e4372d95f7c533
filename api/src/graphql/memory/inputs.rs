//! Story-bible mutation inputs and payloads.

use super::{
    Entity, EntityKind, EntityState, Event, Foreshadowing, ForeshadowingStatus, Relation, Vital,
};
use crate::graphql::Json;
use async_graphql::{ID, InputObject, MaybeUndefined, SimpleObject};

/// Input of `createEntity`.
#[derive(InputObject)]
pub struct CreateEntityInput {
    /// The novel.
    pub novel_id: ID,
    /// Canonical name, unique per novel and kind.
    pub name: String,
    /// What it is.
    pub kind: EntityKind,
    /// Other names it goes by (at most 50).
    #[graphql(default)]
    pub aliases: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Free-form attributes, a JSON object; default `{}`.
    pub attributes: Option<Json>,
    /// Importance 0 to 100; default 50.
    pub importance: Option<i64>,
    /// Initial state.
    pub current_state: Option<String>,
}

/// Input of `updateEntity`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateEntityInput {
    /// The entity.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<EntityKind>,
    /// New aliases (replace the list).
    pub aliases: Option<Vec<String>>,
    /// New description.
    pub description: Option<String>,
    /// New attributes (replace the object).
    pub attributes: Option<Json>,
    /// New importance.
    pub importance: Option<i64>,
}

/// Input of `deleteEntity`.
#[derive(InputObject)]
pub struct DeleteEntityInput {
    /// The entity; its states and relations are deleted with it.
    pub id: ID,
}

/// Input of `recordEntityState`.
#[derive(InputObject)]
pub struct RecordEntityStateInput {
    /// The entity.
    pub entity_id: ID,
    /// The chapter in which it changes (of the entity's novel).
    pub chapter_id: Option<ID>,
    /// Story time of the change.
    pub story_time: Option<i64>,
    /// The new state in words (may be empty when a structured field below says it all).
    #[graphql(default)]
    pub state: String,
    /// Attribute changes, a JSON object merged into the entity's attributes.
    pub attribute_changes: Option<Json>,
    /// Alive or dead from then on.
    pub vital: Option<Vital>,
    /// Where the entity is from then on (a LOCATION entity of the same novel).
    pub location_id: Option<ID>,
    /// For an item: who holds it from then on (an entity of the same novel).
    pub holder_id: Option<ID>,
    /// For an item: gone for good (lost, destroyed) from then on.
    #[graphql(default)]
    pub lost: bool,
    /// Injuries carried from then on, at most 20.
    #[graphql(default)]
    pub injuries: Vec<String>,
}

/// Input of `updateEntityState`: unset fields are left unchanged; `null` clears an
/// optional one. An extracted state change becomes the author's.
#[derive(InputObject)]
pub struct UpdateEntityStateInput {
    /// The state change.
    pub id: ID,
    /// New state text.
    pub state: Option<String>,
    /// New chapter.
    pub chapter_id: Option<ID>,
    /// New story time.
    pub story_time: Option<i64>,
    /// New vital status.
    pub vital: MaybeUndefined<Vital>,
    /// New location.
    pub location_id: MaybeUndefined<ID>,
    /// New holder.
    pub holder_id: MaybeUndefined<ID>,
    /// New lost flag.
    pub lost: Option<bool>,
    /// New injuries (replace the list).
    pub injuries: Option<Vec<String>>,
}

/// Input of `deleteEntityState`.
#[derive(InputObject)]
pub struct DeleteEntityStateInput {
    /// The state change to delete.
    pub id: ID,
}

/// Input of `createRelation`.
#[derive(InputObject)]
pub struct CreateRelationInput {
    /// The entity it goes from.
    pub source_id: ID,
    /// The entity it goes to (of the same novel).
    pub target_id: ID,
    /// Type: friend, enemy, family, lover, subordinate, ... (stored lower-case).
    pub kind: String,
    /// Strength 0 to 1; default 0.5.
    pub strength: Option<f64>,
    /// Description.
    pub description: Option<String>,
    /// The chapter since which it holds.
    pub since_chapter_id: Option<ID>,
}

/// Input of `updateRelation`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateRelationInput {
    /// The relation.
    pub id: ID,
    /// New type.
    pub kind: Option<String>,
    /// New strength.
    pub strength: Option<f64>,
    /// New description.
    pub description: Option<String>,
    /// New starting chapter.
    pub since_chapter_id: Option<ID>,
}

/// Input of `deleteRelation`.
#[derive(InputObject)]
pub struct DeleteRelationInput {
    /// The relation.
    pub id: ID,
}

/// Input of `createEvent`.
#[derive(InputObject)]
pub struct CreateEventInput {
    /// The novel.
    pub novel_id: ID,
    /// The chapter that tells it.
    pub chapter_id: Option<ID>,
    /// Short title.
    pub title: String,
    /// What happens.
    pub summary: Option<String>,
    /// Story time it starts.
    pub story_time_start: i64,
    /// Story time it ends, if it spans time.
    pub story_time_end: Option<i64>,
    /// Where it happens (a LOCATION entity).
    pub location_id: Option<ID>,
    /// Who and what takes part (at most 200 entities).
    #[graphql(default)]
    pub involved_ids: Vec<ID>,
    /// Importance 0 to 100; default 50.
    pub importance: Option<i64>,
}

/// Input of `updateEvent`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateEventInput {
    /// The event.
    pub id: ID,
    /// New chapter.
    pub chapter_id: Option<ID>,
    /// New title.
    pub title: Option<String>,
    /// New summary.
    pub summary: Option<String>,
    /// New start.
    pub story_time_start: Option<i64>,
    /// New end.
    pub story_time_end: Option<i64>,
    /// New location.
    pub location_id: Option<ID>,
    /// New participants (replace the list).
    pub involved_ids: Option<Vec<ID>>,
    /// New importance.
    pub importance: Option<i64>,
}

/// Input of `deleteEvent`.
#[derive(InputObject)]
pub struct DeleteEventInput {
    /// The event.
    pub id: ID,
}

/// Input of `createForeshadowing`.
#[derive(InputObject)]
pub struct CreateForeshadowingInput {
    /// The novel.
    pub novel_id: ID,
    /// Short title.
    pub title: String,
    /// What is planted.
    pub description: Option<String>,
    /// The chapter it is planted in.
    pub planted_chapter_id: Option<ID>,
    /// How it should pay off.
    pub expected_payoff: Option<String>,
}

/// Input of `updateForeshadowing`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateForeshadowingInput {
    /// The thread.
    pub id: ID,
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New planted chapter.
    pub planted_chapter_id: Option<ID>,
    /// New expected payoff.
    pub expected_payoff: Option<String>,
    /// New status; RESOLVED needs a resolving chapter, OPEN clears it.
    pub status: Option<ForeshadowingStatus>,
    /// The chapter that pays it off.
    pub resolved_chapter_id: Option<ID>,
}

/// Input of `deleteForeshadowing`.
#[derive(InputObject)]
pub struct DeleteForeshadowingInput {
    /// The thread.
    pub id: ID,
}

/// Input of `resolveForeshadowing`.
#[derive(InputObject)]
pub struct ResolveForeshadowingInput {
    /// The thread.
    pub id: ID,
    /// The chapter that pays it off.
    pub resolved_chapter_id: ID,
}

macro_rules! payloads {
    ($($name:ident { $field:ident: $ty:ident } $doc:tt $field_doc:tt;)*) => {$(
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            #[doc = $field_doc]
            pub $field: $ty,
        }
    )*};
}

payloads! {
    CreateEntityPayload { entity: Entity } "Result of `createEntity`." "The new entity.";
    UpdateEntityPayload { entity: Entity } "Result of `updateEntity`." "The changed entity.";
    DeleteEntityPayload { entity: Entity } "Result of `deleteEntity`." "The entity as it was before it was deleted.";
    UpdateEntityStatePayload { entity_state: EntityState } "Result of `updateEntityState`." "The changed state change.";
    DeleteEntityStatePayload { entity_state: EntityState } "Result of `deleteEntityState`." "The state change as it was before it was deleted.";
    CreateRelationPayload { relation: Relation } "Result of `createRelation`." "The new relation.";
    UpdateRelationPayload { relation: Relation } "Result of `updateRelation`." "The changed relation.";
    DeleteRelationPayload { relation: Relation } "Result of `deleteRelation`." "The relation as it was before it was deleted.";
    CreateEventPayload { event: Event } "Result of `createEvent`." "The new event.";
    UpdateEventPayload { event: Event } "Result of `updateEvent`." "The changed event.";
    DeleteEventPayload { event: Event } "Result of `deleteEvent`." "The event as it was before it was deleted.";
    CreateForeshadowingPayload { foreshadowing: Foreshadowing } "Result of `createForeshadowing`." "The new thread.";
    UpdateForeshadowingPayload { foreshadowing: Foreshadowing } "Result of `updateForeshadowing`." "The changed thread.";
    DeleteForeshadowingPayload { foreshadowing: Foreshadowing } "Result of `deleteForeshadowing`." "The thread as it was before it was deleted.";
    ResolveForeshadowingPayload { foreshadowing: Foreshadowing } "Result of `resolveForeshadowing`." "The resolved thread.";
}

/// Result of `recordEntityState`.
#[derive(SimpleObject)]
pub struct RecordEntityStatePayload {
    /// The recorded state change.
    pub entity_state: EntityState,
    /// The entity, with its current state and attributes updated.
    pub entity: Entity,
}
