//! Rows of the story bible: entities, entity states, relations, events, foreshadowing.

use super::{enum_from, from_string_array, provenance, provenance_cols, string_array};
use crate::sql::schema::{entities, entity_states, events, foreshadowing, relations};
use crate::sql::types::{DbJson, DbTime, DbUuid, ToDb, opt_db};
use diesel::prelude::*;
use uuid::Uuid;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::*;

/// A row of `entities`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = entities, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct EntityRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub name: String,
    pub aliases: DbJson,
    pub kind: String,
    pub description: String,
    pub attributes: DbJson,
    pub importance: i32,
    pub current_state: String,
    pub first_chapter_seq: Option<i32>,
    pub last_chapter_seq: Option<i32>,
    pub appearance_count: i32,
    pub origin: String,
    pub origin_chapter_id: Option<DbUuid>,
    pub span_start: Option<i32>,
    pub span_end: Option<i32>,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&Entity> for EntityRow {
    fn from(e: &Entity) -> Self {
        let origin = provenance_cols(&e.provenance);
        Self {
            id: e.id.db(),
            tenant_id: e.tenant_id.db(),
            novel_id: e.novel_id.db(),
            name: e.name.clone(),
            aliases: DbJson(string_array(e.aliases.iter().map(String::as_str))),
            kind: e.kind.as_str().to_owned(),
            description: e.description.clone(),
            attributes: DbJson(e.attributes.clone()),
            importance: e.importance,
            current_state: e.current_state.clone(),
            first_chapter_seq: e.first_chapter_seq,
            last_chapter_seq: e.last_chapter_seq,
            appearance_count: e.appearance_count,
            origin: origin.0,
            origin_chapter_id: origin.1,
            span_start: origin.2,
            span_end: origin.3,
            created_at: DbTime(e.created_at),
            updated_at: DbTime(e.updated_at),
        }
    }
}

impl TryFrom<EntityRow> for Entity {
    type Error = StoreError;
    fn try_from(r: EntityRow) -> Result<Self, StoreError> {
        Ok(Entity {
            id: EntityId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            name: r.name,
            aliases: from_string_array("entity aliases", &r.aliases.0, |s| Some(s.to_owned()))?,
            kind: enum_from("entity kind", &r.kind, EntityKind::parse)?,
            description: r.description,
            attributes: r.attributes.0,
            importance: r.importance,
            current_state: r.current_state,
            first_chapter_seq: r.first_chapter_seq,
            last_chapter_seq: r.last_chapter_seq,
            appearance_count: r.appearance_count,
            provenance: provenance(&r.origin, r.origin_chapter_id, r.span_start, r.span_end)?,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `entity_states`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = entity_states, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct EntityStateRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub entity_id: DbUuid,
    pub chapter_id: Option<DbUuid>,
    pub story_time: Option<i64>,
    pub state: String,
    pub attribute_changes: DbJson,
    pub vital: Option<String>,
    pub location_id: Option<DbUuid>,
    pub holder_id: Option<DbUuid>,
    pub lost: bool,
    pub injuries: DbJson,
    pub origin: String,
    pub origin_chapter_id: Option<DbUuid>,
    pub span_start: Option<i32>,
    pub span_end: Option<i32>,
    pub created_at: DbTime,
}

impl From<&EntityState> for EntityStateRow {
    fn from(s: &EntityState) -> Self {
        let origin = provenance_cols(&s.provenance);
        Self {
            id: s.id.db(),
            tenant_id: s.tenant_id.db(),
            entity_id: s.entity_id.db(),
            chapter_id: opt_db(s.chapter_id),
            story_time: s.story_time,
            state: s.state.clone(),
            attribute_changes: DbJson(s.attribute_changes.clone()),
            vital: s.vital.map(|v| v.as_str().to_owned()),
            location_id: opt_db(s.location_id),
            holder_id: opt_db(s.holder_id),
            lost: s.lost,
            injuries: DbJson(string_array(s.injuries.iter().map(String::as_str))),
            origin: origin.0,
            origin_chapter_id: origin.1,
            span_start: origin.2,
            span_end: origin.3,
            created_at: DbTime(s.created_at),
        }
    }
}

impl TryFrom<EntityStateRow> for EntityState {
    type Error = StoreError;
    fn try_from(r: EntityStateRow) -> Result<Self, StoreError> {
        Ok(EntityState {
            id: EntityStateId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            entity_id: EntityId::from_uuid(r.entity_id.0),
            chapter_id: r.chapter_id.map(|c| ChapterId::from_uuid(c.0)),
            story_time: r.story_time,
            state: r.state,
            attribute_changes: r.attribute_changes.0,
            vital: r
                .vital
                .as_deref()
                .map(|v| enum_from("vital", v, Vital::parse))
                .transpose()?,
            location_id: r.location_id.map(|l| EntityId::from_uuid(l.0)),
            holder_id: r.holder_id.map(|h| EntityId::from_uuid(h.0)),
            lost: r.lost,
            injuries: from_string_array("entity state injuries", &r.injuries.0, |s| {
                Some(s.to_owned())
            })?,
            provenance: provenance(&r.origin, r.origin_chapter_id, r.span_start, r.span_end)?,
            created_at: r.created_at.0,
        })
    }
}

/// A row of `relations`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = relations, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct RelationRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub source_id: DbUuid,
    pub target_id: DbUuid,
    pub kind: String,
    pub strength: f64,
    pub description: String,
    pub since_chapter_id: Option<DbUuid>,
    pub origin: String,
    pub origin_chapter_id: Option<DbUuid>,
    pub span_start: Option<i32>,
    pub span_end: Option<i32>,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&Relation> for RelationRow {
    fn from(r: &Relation) -> Self {
        let origin = provenance_cols(&r.provenance);
        Self {
            id: r.id.db(),
            tenant_id: r.tenant_id.db(),
            novel_id: r.novel_id.db(),
            source_id: r.source_id.db(),
            target_id: r.target_id.db(),
            kind: r.kind.clone(),
            strength: r.strength,
            description: r.description.clone(),
            since_chapter_id: opt_db(r.since_chapter_id),
            origin: origin.0,
            origin_chapter_id: origin.1,
            span_start: origin.2,
            span_end: origin.3,
            created_at: DbTime(r.created_at),
            updated_at: DbTime(r.updated_at),
        }
    }
}

impl TryFrom<RelationRow> for Relation {
    type Error = StoreError;
    fn try_from(r: RelationRow) -> Result<Self, StoreError> {
        Ok(Relation {
            id: RelationId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            source_id: EntityId::from_uuid(r.source_id.0),
            target_id: EntityId::from_uuid(r.target_id.0),
            kind: r.kind,
            strength: r.strength,
            description: r.description,
            since_chapter_id: r.since_chapter_id.map(|c| ChapterId::from_uuid(c.0)),
            provenance: provenance(&r.origin, r.origin_chapter_id, r.span_start, r.span_end)?,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `events`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct EventRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub chapter_id: Option<DbUuid>,
    pub title: String,
    pub summary: String,
    pub story_time_start: i64,
    pub story_time_end: Option<i64>,
    pub location_id: Option<DbUuid>,
    pub involved: DbJson,
    pub importance: i32,
    pub origin: String,
    pub origin_chapter_id: Option<DbUuid>,
    pub span_start: Option<i32>,
    pub span_end: Option<i32>,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&Event> for EventRow {
    fn from(e: &Event) -> Self {
        let origin = provenance_cols(&e.provenance);
        let involved: Vec<String> = e.involved.iter().map(|id| id.to_string()).collect();
        Self {
            id: e.id.db(),
            tenant_id: e.tenant_id.db(),
            novel_id: e.novel_id.db(),
            chapter_id: opt_db(e.chapter_id),
            title: e.title.clone(),
            summary: e.summary.clone(),
            story_time_start: e.story_time_start,
            story_time_end: e.story_time_end,
            location_id: opt_db(e.location_id),
            involved: DbJson(string_array(involved.iter().map(String::as_str))),
            importance: e.importance,
            origin: origin.0,
            origin_chapter_id: origin.1,
            span_start: origin.2,
            span_end: origin.3,
            created_at: DbTime(e.created_at),
            updated_at: DbTime(e.updated_at),
        }
    }
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(Event {
            id: EventId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            chapter_id: r.chapter_id.map(|c| ChapterId::from_uuid(c.0)),
            title: r.title,
            summary: r.summary,
            story_time_start: r.story_time_start,
            story_time_end: r.story_time_end,
            location_id: r.location_id.map(|l| EntityId::from_uuid(l.0)),
            involved: from_string_array("event involved ids", &r.involved.0, |s| {
                Uuid::parse_str(s).ok().map(EntityId::from_uuid)
            })?,
            importance: r.importance,
            provenance: provenance(&r.origin, r.origin_chapter_id, r.span_start, r.span_end)?,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `foreshadowing`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = foreshadowing, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ForeshadowingRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub title: String,
    pub description: String,
    pub planted_chapter_id: Option<DbUuid>,
    pub expected_payoff: String,
    pub resolved_chapter_id: Option<DbUuid>,
    pub status: String,
    pub origin: String,
    pub origin_chapter_id: Option<DbUuid>,
    pub span_start: Option<i32>,
    pub span_end: Option<i32>,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&Foreshadowing> for ForeshadowingRow {
    fn from(f: &Foreshadowing) -> Self {
        let origin = provenance_cols(&f.provenance);
        Self {
            id: f.id.db(),
            tenant_id: f.tenant_id.db(),
            novel_id: f.novel_id.db(),
            title: f.title.clone(),
            description: f.description.clone(),
            planted_chapter_id: opt_db(f.planted_chapter_id),
            expected_payoff: f.expected_payoff.clone(),
            resolved_chapter_id: opt_db(f.resolved_chapter_id),
            status: f.status.as_str().to_owned(),
            origin: origin.0,
            origin_chapter_id: origin.1,
            span_start: origin.2,
            span_end: origin.3,
            created_at: DbTime(f.created_at),
            updated_at: DbTime(f.updated_at),
        }
    }
}

impl TryFrom<ForeshadowingRow> for Foreshadowing {
    type Error = StoreError;
    fn try_from(r: ForeshadowingRow) -> Result<Self, StoreError> {
        Ok(Foreshadowing {
            id: ForeshadowingId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            title: r.title,
            description: r.description,
            planted_chapter_id: r.planted_chapter_id.map(|c| ChapterId::from_uuid(c.0)),
            expected_payoff: r.expected_payoff,
            resolved_chapter_id: r.resolved_chapter_id.map(|c| ChapterId::from_uuid(c.0)),
            status: enum_from(
                "foreshadowing status",
                &r.status,
                ForeshadowingStatus::parse,
            )?,
            provenance: provenance(&r.origin, r.origin_chapter_id, r.span_start, r.span_end)?,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}
