//! Rows of novels, volumes, chapters and revisions.

use super::enum_from;
use crate::sql::schema::{chapter_revisions, chapters, novels, volumes};
use crate::sql::types::{DbJson, DbTime, DbUuid, ToDb, opt_db};
use diesel::prelude::*;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::*;

/// A row of `novels`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = novels, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct NovelRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub title: String,
    pub description: String,
    pub genre: String,
    pub language: String,
    pub target_word_count: Option<i64>,
    pub style_guide: String,
    pub world_settings: DbJson,
    pub time_system: String,
    pub status: String,
    pub word_count: i64,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&Novel> for NovelRow {
    fn from(n: &Novel) -> Self {
        Self {
            id: n.id.db(),
            tenant_id: n.tenant_id.db(),
            title: n.title.clone(),
            description: n.description.clone(),
            genre: n.genre.clone(),
            language: n.language.clone(),
            target_word_count: n.target_word_count,
            style_guide: n.style_guide.clone(),
            world_settings: DbJson(n.world_settings.clone()),
            time_system: n.time_system.clone(),
            status: n.status.as_str().to_owned(),
            word_count: n.word_count,
            created_at: DbTime(n.created_at),
            updated_at: DbTime(n.updated_at),
        }
    }
}

impl TryFrom<NovelRow> for Novel {
    type Error = StoreError;
    fn try_from(r: NovelRow) -> Result<Self, StoreError> {
        Ok(Novel {
            id: NovelId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            title: r.title,
            description: r.description,
            genre: r.genre,
            language: r.language,
            target_word_count: r.target_word_count,
            style_guide: r.style_guide,
            world_settings: r.world_settings.0,
            time_system: r.time_system,
            status: enum_from("novel status", &r.status, NovelStatus::parse)?,
            word_count: r.word_count,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `volumes`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = volumes, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct VolumeRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub seq: i32,
    pub title: String,
    pub summary: String,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&Volume> for VolumeRow {
    fn from(v: &Volume) -> Self {
        Self {
            id: v.id.db(),
            tenant_id: v.tenant_id.db(),
            novel_id: v.novel_id.db(),
            seq: v.seq,
            title: v.title.clone(),
            summary: v.summary.clone(),
            created_at: DbTime(v.created_at),
            updated_at: DbTime(v.updated_at),
        }
    }
}

impl TryFrom<VolumeRow> for Volume {
    type Error = StoreError;
    fn try_from(r: VolumeRow) -> Result<Self, StoreError> {
        Ok(Volume {
            id: VolumeId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            seq: r.seq,
            title: r.title,
            summary: r.summary,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `chapters`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = chapters, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ChapterRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub volume_id: Option<DbUuid>,
    pub seq: i32,
    pub title: String,
    pub outline: String,
    pub content: String,
    pub summary: String,
    pub summary_origin: String,
    pub story_time_start: Option<i64>,
    pub story_time_end: Option<i64>,
    pub word_count: i64,
    pub target_word_count: Option<i64>,
    pub status: String,
    pub version: i32,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&Chapter> for ChapterRow {
    fn from(c: &Chapter) -> Self {
        Self {
            id: c.id.db(),
            tenant_id: c.tenant_id.db(),
            novel_id: c.novel_id.db(),
            volume_id: opt_db(c.volume_id),
            seq: c.seq,
            title: c.title.clone(),
            outline: c.outline.clone(),
            content: c.content.clone(),
            summary: c.summary.clone(),
            summary_origin: c.summary_origin.as_str().to_owned(),
            story_time_start: c.story_time_start,
            story_time_end: c.story_time_end,
            word_count: c.word_count,
            target_word_count: c.target_word_count,
            status: c.status.as_str().to_owned(),
            version: c.version,
            created_at: DbTime(c.created_at),
            updated_at: DbTime(c.updated_at),
        }
    }
}

impl TryFrom<ChapterRow> for Chapter {
    type Error = StoreError;
    fn try_from(r: ChapterRow) -> Result<Self, StoreError> {
        Ok(Chapter {
            id: ChapterId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            volume_id: r.volume_id.map(|v| VolumeId::from_uuid(v.0)),
            seq: r.seq,
            title: r.title,
            outline: r.outline,
            content: r.content,
            summary: r.summary,
            summary_origin: enum_from("summary origin", &r.summary_origin, Origin::parse)?,
            story_time_start: r.story_time_start,
            story_time_end: r.story_time_end,
            word_count: r.word_count,
            target_word_count: r.target_word_count,
            status: enum_from("chapter status", &r.status, ChapterStatus::parse)?,
            version: r.version,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `chapter_revisions`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(
    table_name = chapter_revisions,
    check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite)
)]
pub struct RevisionRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub chapter_id: DbUuid,
    pub version: i32,
    pub content: String,
    pub word_count: i64,
    pub source: String,
    pub created_by: Option<DbUuid>,
    pub job_id: Option<DbUuid>,
    pub note: String,
    pub created_at: DbTime,
}

impl From<&ChapterRevision> for RevisionRow {
    fn from(r: &ChapterRevision) -> Self {
        Self {
            id: r.id.db(),
            tenant_id: r.tenant_id.db(),
            chapter_id: r.chapter_id.db(),
            version: r.version,
            content: r.content.clone(),
            word_count: r.word_count,
            source: r.source.as_str().to_owned(),
            created_by: opt_db(r.created_by),
            job_id: opt_db(r.job_id),
            note: r.note.clone(),
            created_at: DbTime(r.created_at),
        }
    }
}

impl TryFrom<RevisionRow> for ChapterRevision {
    type Error = StoreError;
    fn try_from(r: RevisionRow) -> Result<Self, StoreError> {
        Ok(ChapterRevision {
            id: RevisionId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            chapter_id: ChapterId::from_uuid(r.chapter_id.0),
            version: r.version,
            content: r.content,
            word_count: r.word_count,
            source: enum_from("revision source", &r.source, RevisionSource::parse)?,
            created_by: r.created_by.map(|u| UserId::from_uuid(u.0)),
            job_id: r.job_id.map(|j| JobId::from_uuid(j.0)),
            note: r.note,
            created_at: r.created_at.0,
        })
    }
}
