//! Story service: novels, volumes, chapters and revisions.

use super::{Indexer, Scheduler, audit, now};
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::*;
use crate::model::*;
use crate::page::{Page, PageRequest};
use crate::ports::{ChapterFilter, NovelFilter, Store};
use crate::text::{self, MAX_CONTENT, MAX_TEXT, Title, count_words};
use std::sync::Arc;

/// Largest world-settings / attributes JSON document, serialized.
pub const MAX_JSON_BYTES: usize = 256 * 1024;
/// Largest target word count of a novel.
pub const MAX_NOVEL_WORDS: i64 = 50_000_000;
/// Largest target word count of a chapter.
pub const MAX_CHAPTER_WORDS: i64 = 200_000;
/// Largest chapter or volume seq.
pub const MAX_SEQ: i64 = 100_000;

/// Input of [`StoryService::create_novel`]. Unset optional fields take defaults.
#[derive(Debug, Clone, Default)]
pub struct CreateNovel {
    /// Title (required).
    pub title: String,
    /// Blurb.
    pub description: Option<String>,
    /// Genre.
    pub genre: Option<String>,
    /// Language tag; default `en`.
    pub language: Option<String>,
    /// Planned length.
    pub target_word_count: Option<i64>,
    /// Style guide.
    pub style_guide: Option<String>,
    /// World settings (a JSON object).
    pub world_settings: Option<serde_json::Value>,
    /// Time system description.
    pub time_system: Option<String>,
}

/// Input of [`StoryService::update_novel`]: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UpdateNovel {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New genre.
    pub genre: Option<String>,
    /// New language tag.
    pub language: Option<String>,
    /// New target length.
    pub target_word_count: Option<i64>,
    /// New style guide.
    pub style_guide: Option<String>,
    /// New world settings (replaces the whole object).
    pub world_settings: Option<serde_json::Value>,
    /// New time system.
    pub time_system: Option<String>,
    /// New status.
    pub status: Option<NovelStatus>,
}

/// Input of [`StoryService::create_volume`].
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// The novel.
    pub novel_id: NovelId,
    /// Position; default: after the last volume.
    pub seq: Option<i64>,
    /// Title.
    pub title: String,
    /// Summary.
    pub summary: Option<String>,
}

/// Input of [`StoryService::update_volume`].
#[derive(Debug, Clone, Default)]
pub struct UpdateVolume {
    /// New position.
    pub seq: Option<i64>,
    /// New title.
    pub title: Option<String>,
    /// New summary.
    pub summary: Option<String>,
}

/// Input of [`StoryService::create_chapter`].
#[derive(Debug, Clone, Default)]
pub struct CreateChapter {
    /// The novel.
    pub novel_id: NovelId,
    /// The volume (of the same novel).
    pub volume_id: Option<VolumeId>,
    /// Position in the novel; default: after the last chapter.
    pub seq: Option<i64>,
    /// Title.
    pub title: String,
    /// Outline / beats.
    pub outline: Option<String>,
    /// Initial content (stored as revision 1 when not empty).
    pub content: Option<String>,
    /// Planned length.
    pub target_word_count: Option<i64>,
    /// Story time at the start.
    pub story_time_start: Option<i64>,
    /// Story time at the end.
    pub story_time_end: Option<i64>,
}

/// Input of [`StoryService::update_chapter`]: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UpdateChapter {
    /// Move to a volume (`Some(None)`: out of any volume).
    pub volume_id: Option<Option<VolumeId>>,
    /// New position.
    pub seq: Option<i64>,
    /// New title.
    pub title: Option<String>,
    /// New outline.
    pub outline: Option<String>,
    /// New summary.
    pub summary: Option<String>,
    /// New content: stored as a new revision.
    pub content: Option<String>,
    /// With `content`: fail with `Conflict` unless the chapter is still at this version.
    pub expected_version: Option<i64>,
    /// New target length.
    pub target_word_count: Option<i64>,
    /// New story time at the start.
    pub story_time_start: Option<i64>,
    /// New story time at the end.
    pub story_time_end: Option<i64>,
    /// New status.
    pub status: Option<ChapterStatus>,
}

pub(crate) fn json_object(
    field: &str,
    value: serde_json::Value,
) -> Result<serde_json::Value, Error> {
    if !value.is_object() {
        return Err(Error::invalid(field, "must be a JSON object"));
    }
    let text = serde_json::to_string(&value).unwrap_or_default();
    if text.len() > MAX_JSON_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_JSON_BYTES} bytes"),
        ));
    }
    // PostgreSQL cannot store U+0000 in text or JSON (SQLite can): refused on both, so
    // the two backends accept the same input.
    if has_nul(&value) {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    Ok(value)
}

/// Whether a NUL character appears in any string or key of `value`.
fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn seq(field: &str, v: i64) -> Result<i32, Error> {
    text::in_range(field, v, 1, MAX_SEQ).map(|v| v as i32)
}

fn story_times(start: Option<i64>, end: Option<i64>) -> Result<(), Error> {
    match (start, end) {
        (Some(s), Some(e)) if e < s => Err(Error::invalid(
            "storyTimeEnd",
            "must not be before storyTimeStart",
        )),
        _ => Ok(()),
    }
}

/// Novels, volumes, chapters and revisions.
#[derive(Clone)]
pub struct StoryService {
    store: Arc<dyn Store>,
    memory: Option<(Scheduler, Indexer)>,
}

impl StoryService {
    /// Builds the service.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            memory: None,
        }
    }

    /// The same service, remembering: every change of a chapter's content (or place)
    /// queues the memory job of its new version, and a deleted chapter is forgotten.
    pub fn with_memory(mut self, scheduler: Scheduler, indexer: Indexer) -> Self {
        self.memory = Some((scheduler, indexer));
        self
    }

    /// Queues the memory job of the chapter's current version (best effort: the memory
    /// sweep queues it later when this fails).
    async fn remember(&self, actor: &Actor, c: &Chapter) {
        if let Some((scheduler, _)) = &self.memory
            && let Err(e) = scheduler.remember(c, Some(actor.user_id)).await
        {
            tracing::warn!(error = %e, chapter = %c.id, "cannot queue the memory job");
        }
    }

    /// Creates a novel. Needs MEMBER; checks the tenant's novel quota.
    pub async fn create_novel(&self, actor: &Actor, input: CreateNovel) -> Result<Novel, Error> {
        actor.require_write()?;
        let title = Title::parse("title", &input.title)?.into_inner();
        let language = text::language_tag(input.language.as_deref().unwrap_or("en"))?;
        let target_word_count = input
            .target_word_count
            .map(|n| text::in_range("targetWordCount", n, 1, MAX_NOVEL_WORDS))
            .transpose()?;
        let world_settings = json_object(
            "worldSettings",
            input
                .world_settings
                .unwrap_or_else(|| serde_json::json!({})),
        )?;
        let tenant = self
            .store
            .get_tenant(actor.tenant_id)
            .await
            .or_not_found("tenant")?;
        if self.store.count_novels(actor.tenant_id).await? >= tenant.quota.max_novels {
            return Err(Error::QuotaExceeded(format!(
                "the tenant may hold at most {} novels",
                tenant.quota.max_novels
            )));
        }
        let t = now();
        let novel = Novel {
            id: NovelId::new(),
            tenant_id: actor.tenant_id,
            title,
            description: text::bounded(
                "description",
                input.description.as_deref().unwrap_or(""),
                MAX_TEXT,
            )?,
            genre: text::bounded("genre", input.genre.as_deref().unwrap_or(""), 100)?,
            language,
            target_word_count,
            style_guide: text::bounded(
                "styleGuide",
                input.style_guide.as_deref().unwrap_or(""),
                MAX_TEXT,
            )?,
            world_settings,
            time_system: text::bounded(
                "timeSystem",
                input.time_system.as_deref().unwrap_or(""),
                MAX_TEXT,
            )?,
            status: NovelStatus::Draft,
            word_count: 0,
            created_at: t,
            updated_at: t,
        };
        self.store.insert_novel(&novel).await?;
        audit(&*self.store, actor, "novel.create", "Novel", novel.id).await;
        Ok(novel)
    }

    /// Reads a novel of the actor's tenant.
    pub async fn novel(&self, actor: &Actor, id: NovelId) -> Result<Novel, Error> {
        self.store
            .get_novel(actor.tenant_id, id)
            .await
            .or_not_found("novel")
    }

    /// Lists novels.
    pub async fn novels(
        &self,
        actor: &Actor,
        filter: NovelFilter,
        page: PageRequest,
    ) -> Result<Page<Novel>, Error> {
        Ok(self
            .store
            .list_novels(actor.tenant_id, &filter, page)
            .await?)
    }

    /// Changes a novel. Needs MEMBER.
    pub async fn update_novel(
        &self,
        actor: &Actor,
        id: NovelId,
        input: UpdateNovel,
    ) -> Result<Novel, Error> {
        actor.require_write()?;
        let mut n = self.novel(actor, id).await?;
        if let Some(v) = input.title {
            n.title = Title::parse("title", &v)?.into_inner();
        }
        if let Some(v) = input.description {
            n.description = text::bounded("description", &v, MAX_TEXT)?;
        }
        if let Some(v) = input.genre {
            n.genre = text::bounded("genre", &v, 100)?;
        }
        if let Some(v) = input.language {
            n.language = text::language_tag(&v)?;
        }
        if let Some(v) = input.target_word_count {
            n.target_word_count = Some(text::in_range("targetWordCount", v, 1, MAX_NOVEL_WORDS)?);
        }
        if let Some(v) = input.style_guide {
            n.style_guide = text::bounded("styleGuide", &v, MAX_TEXT)?;
        }
        if let Some(v) = input.world_settings {
            n.world_settings = json_object("worldSettings", v)?;
        }
        if let Some(v) = input.time_system {
            n.time_system = text::bounded("timeSystem", &v, MAX_TEXT)?;
        }
        if let Some(v) = input.status {
            n.status = v;
        }
        n.updated_at = now();
        self.store.update_novel(&n).await.or_not_found("novel")?;
        audit(&*self.store, actor, "novel.update", "Novel", n.id).await;
        Ok(n)
    }

    /// Archives a novel (status ARCHIVED; nothing is deleted). Needs MEMBER.
    pub async fn archive_novel(&self, actor: &Actor, id: NovelId) -> Result<Novel, Error> {
        self.update_novel(
            actor,
            id,
            UpdateNovel {
                status: Some(NovelStatus::Archived),
                ..Default::default()
            },
        )
        .await
    }

    /// Creates a volume. Needs MEMBER.
    pub async fn create_volume(&self, actor: &Actor, input: CreateVolume) -> Result<Volume, Error> {
        actor.require_write()?;
        let title = Title::parse("title", &input.title)?.into_inner();
        let summary = text::bounded("summary", input.summary.as_deref().unwrap_or(""), MAX_TEXT)?;
        let novel = self.novel(actor, input.novel_id).await?;
        let seq = match input.seq {
            Some(v) => seq("seq", v)?,
            None => self.next_volume_seq(actor, novel.id).await?,
        };
        let t = now();
        let volume = Volume {
            id: VolumeId::new(),
            tenant_id: actor.tenant_id,
            novel_id: novel.id,
            seq,
            title,
            summary,
            created_at: t,
            updated_at: t,
        };
        self.store
            .insert_volume(&volume)
            .await
            .map_err(|e| conflict_seq(e, "volume", seq))?;
        audit(&*self.store, actor, "volume.create", "Volume", volume.id).await;
        Ok(volume)
    }

    /// Reads a volume.
    pub async fn volume(&self, actor: &Actor, id: VolumeId) -> Result<Volume, Error> {
        self.store
            .get_volume(actor.tenant_id, id)
            .await
            .or_not_found("volume")
    }

    /// Lists a novel's volumes by seq.
    pub async fn volumes(
        &self,
        actor: &Actor,
        novel: NovelId,
        page: PageRequest,
    ) -> Result<Page<Volume>, Error> {
        self.novel(actor, novel).await?;
        Ok(self
            .store
            .list_volumes(actor.tenant_id, novel, page)
            .await?)
    }

    /// Changes a volume. Needs MEMBER.
    pub async fn update_volume(
        &self,
        actor: &Actor,
        id: VolumeId,
        input: UpdateVolume,
    ) -> Result<Volume, Error> {
        actor.require_write()?;
        let mut v = self.volume(actor, id).await?;
        if let Some(s) = input.seq {
            v.seq = seq("seq", s)?;
        }
        if let Some(t) = input.title {
            v.title = Title::parse("title", &t)?.into_inner();
        }
        if let Some(s) = input.summary {
            v.summary = text::bounded("summary", &s, MAX_TEXT)?;
        }
        v.updated_at = now();
        let s = v.seq;
        self.store
            .update_volume(&v)
            .await
            .map_err(|e| conflict_seq(e, "volume", s))?;
        audit(&*self.store, actor, "volume.update", "Volume", v.id).await;
        Ok(v)
    }

    /// Deletes a volume; its chapters stay in the novel. Needs MEMBER.
    pub async fn delete_volume(&self, actor: &Actor, id: VolumeId) -> Result<Volume, Error> {
        actor.require_write()?;
        let v = self.volume(actor, id).await?;
        self.store
            .delete_volume(actor.tenant_id, id)
            .await
            .or_not_found("volume")?;
        audit(&*self.store, actor, "volume.delete", "Volume", id).await;
        Ok(v)
    }

    /// Creates a chapter (with revision 1 when content is given). Needs MEMBER; checks
    /// the chapters-per-novel quota.
    pub async fn create_chapter(
        &self,
        actor: &Actor,
        input: CreateChapter,
    ) -> Result<Chapter, Error> {
        actor.require_write()?;
        let title = Title::parse("title", &input.title)?.into_inner();
        let outline = text::bounded("outline", input.outline.as_deref().unwrap_or(""), MAX_TEXT)?;
        let content = text::bounded(
            "content",
            input.content.as_deref().unwrap_or(""),
            MAX_CONTENT,
        )?;
        let target_word_count = input
            .target_word_count
            .map(|n| text::in_range("targetWordCount", n, 1, MAX_CHAPTER_WORDS))
            .transpose()?;
        story_times(input.story_time_start, input.story_time_end)?;
        let novel = self.novel(actor, input.novel_id).await?;
        if let Some(vid) = input.volume_id {
            self.volume_of(actor, vid, novel.id).await?;
        }
        let tenant = self
            .store
            .get_tenant(actor.tenant_id)
            .await
            .or_not_found("tenant")?;
        if self.store.count_chapters(actor.tenant_id, novel.id).await?
            >= tenant.quota.max_chapters_per_novel
        {
            return Err(Error::QuotaExceeded(format!(
                "a novel may hold at most {} chapters",
                tenant.quota.max_chapters_per_novel
            )));
        }
        let seq = match input.seq {
            Some(v) => seq("seq", v)?,
            None => {
                self.store
                    .max_chapter_seq(actor.tenant_id, novel.id)
                    .await?
                    .unwrap_or(0)
                    + 1
            }
        };
        let t = now();
        let has_content = !content.is_empty();
        let chapter = Chapter {
            id: ChapterId::new(),
            tenant_id: actor.tenant_id,
            novel_id: novel.id,
            volume_id: input.volume_id,
            seq,
            title,
            outline,
            word_count: count_words(&content),
            content,
            summary: String::new(),
            summary_origin: Origin::Author,
            story_time_start: input.story_time_start,
            story_time_end: input.story_time_end,
            target_word_count,
            status: ChapterStatus::Draft,
            version: i32::from(has_content),
            created_at: t,
            updated_at: t,
        };
        let revision = has_content
            .then(|| self.revision(actor, &chapter, RevisionSource::Author, None, String::new()));
        self.store
            .insert_chapter(&chapter, revision.as_ref())
            .await
            .map_err(|e| conflict_seq(e, "chapter", seq))?;
        audit(&*self.store, actor, "chapter.create", "Chapter", chapter.id).await;
        if has_content {
            self.remember(actor, &chapter).await;
        }
        Ok(chapter)
    }

    /// Where the novel's memory stands: how many chapters are remembered.
    pub async fn memory_progress(
        &self,
        actor: &Actor,
        novel: NovelId,
    ) -> Result<MemoryProgress, Error> {
        self.novel(actor, novel).await?;
        Ok(self.store.memory_progress(actor.tenant_id, novel).await?)
    }

    /// Reads a chapter to show it (possibly from the store's memory: see
    /// [`ChapterRepository::show_chapter`](crate::ports::ChapterRepository::show_chapter)).
    pub async fn chapter(&self, actor: &Actor, id: ChapterId) -> Result<Chapter, Error> {
        self.store
            .show_chapter(actor.tenant_id, id)
            .await
            .or_not_found("chapter")
    }

    /// Reads a chapter from the database, for a change based on it.
    async fn stored_chapter(&self, actor: &Actor, id: ChapterId) -> Result<Chapter, Error> {
        self.store
            .get_chapter(actor.tenant_id, id)
            .await
            .or_not_found("chapter")
    }

    /// Lists a novel's chapters by seq.
    pub async fn chapters(
        &self,
        actor: &Actor,
        novel: NovelId,
        filter: ChapterFilter,
        page: PageRequest,
    ) -> Result<Page<Chapter>, Error> {
        self.novel(actor, novel).await?;
        Ok(self
            .store
            .list_chapters(actor.tenant_id, novel, &filter, page)
            .await?)
    }

    /// Changes a chapter. New content is stored as a new revision (optimistically
    /// checked against `expected_version` when given). Needs MEMBER.
    pub async fn update_chapter(
        &self,
        actor: &Actor,
        id: ChapterId,
        input: UpdateChapter,
    ) -> Result<Chapter, Error> {
        actor.require_write()?;
        let mut c = self.stored_chapter(actor, id).await?;
        if let Some(vid) = input.volume_id {
            if let Some(vid) = vid {
                self.volume_of(actor, vid, c.novel_id).await?;
            }
            c.volume_id = vid;
        }
        if let Some(v) = input.seq {
            c.seq = seq("seq", v)?;
        }
        if let Some(v) = input.title {
            c.title = Title::parse("title", &v)?.into_inner();
        }
        if let Some(v) = input.outline {
            c.outline = text::bounded("outline", &v, MAX_TEXT)?;
        }
        let summary_changed = input.summary.is_some();
        if let Some(v) = input.summary {
            c.summary = text::bounded("summary", &v, MAX_TEXT)?;
            c.summary_origin = Origin::Author;
        }
        let old_seq = c.seq;
        if let Some(v) = input.target_word_count {
            c.target_word_count = Some(text::in_range("targetWordCount", v, 1, MAX_CHAPTER_WORDS)?);
        }
        if input.story_time_start.is_some() {
            c.story_time_start = input.story_time_start;
        }
        if input.story_time_end.is_some() {
            c.story_time_end = input.story_time_end;
        }
        story_times(c.story_time_start, c.story_time_end)?;
        if let Some(v) = input.status {
            c.status = v;
        }
        let content = input
            .content
            .map(|v| text::bounded("content", &v, MAX_CONTENT))
            .transpose()?;
        if let (Some(expected), Some(_)) = (input.expected_version, &content)
            && expected != i64::from(c.version)
        {
            return Err(Error::Conflict(format!(
                "the chapter is at version {}, not {expected}; reload and retry",
                c.version
            )));
        }
        c.updated_at = now();
        let s = c.seq;
        self.store
            .update_chapter(&c)
            .await
            .map_err(|e| conflict_seq(e, "chapter", s))?;
        let mut changed = c.seq != old_seq;
        if let Some(content) = content
            && content != c.content
        {
            c = self
                .store_content(actor, c, content, RevisionSource::Author, String::new())
                .await?;
            changed = true;
        }
        audit(&*self.store, actor, "chapter.update", "Chapter", c.id).await;
        if changed && c.version > 0 {
            self.remember(actor, &c).await;
        } else if summary_changed
            && let Some((_, indexer)) = &self.memory
            && let Err(e) = indexer.chapter_summary(&c).await
        {
            tracing::warn!(error = %e, chapter = %c.id, "could not index the summary");
        }
        Ok(c)
    }

    /// Restores the content of an earlier revision as a new revision. Needs MEMBER.
    pub async fn rollback_chapter(
        &self,
        actor: &Actor,
        id: ChapterId,
        revision: RevisionId,
    ) -> Result<Chapter, Error> {
        actor.require_write()?;
        let c = self.stored_chapter(actor, id).await?;
        let r = self
            .store
            .get_revision(actor.tenant_id, revision)
            .await
            .or_not_found("revision")?;
        if r.chapter_id != c.id {
            return Err(Error::NotFound {
                resource: "revision",
            });
        }
        let note = format!("rollback to version {}", r.version);
        let c = self
            .store_content(actor, c, r.content, RevisionSource::Rollback, note)
            .await?;
        audit(&*self.store, actor, "chapter.rollback", "Chapter", c.id).await;
        self.remember(actor, &c).await;
        Ok(c)
    }

    /// Deletes a chapter and its revisions. Needs MEMBER.
    pub async fn delete_chapter(&self, actor: &Actor, id: ChapterId) -> Result<Chapter, Error> {
        actor.require_write()?;
        let c = self.stored_chapter(actor, id).await?;
        self.store
            .delete_chapter(actor.tenant_id, id)
            .await
            .or_not_found("chapter")?;
        audit(&*self.store, actor, "chapter.delete", "Chapter", id).await;
        if let Some((_, indexer)) = &self.memory
            && let Err(e) = indexer.forget_chapter(&c).await
        {
            // Recall drops records of chapters that no longer exist anyway.
            tracing::warn!(error = %e, chapter = %c.id, "could not forget the chapter in the index");
        }
        Ok(c)
    }

    /// Reads a revision.
    pub async fn revision_by_id(
        &self,
        actor: &Actor,
        id: RevisionId,
    ) -> Result<ChapterRevision, Error> {
        self.store
            .get_revision(actor.tenant_id, id)
            .await
            .or_not_found("revision")
    }

    /// Lists a chapter's revisions, newest first.
    pub async fn revisions(
        &self,
        actor: &Actor,
        chapter: ChapterId,
        page: PageRequest,
    ) -> Result<Page<ChapterRevision>, Error> {
        self.chapter(actor, chapter).await?;
        Ok(self
            .store
            .list_revisions(actor.tenant_id, chapter, page)
            .await?)
    }

    /// One past the highest volume seq of the novel (volumes are few; walk the pages).
    async fn next_volume_seq(&self, actor: &Actor, novel: NovelId) -> Result<i32, Error> {
        let mut max = 0;
        let mut page = PageRequest::new(Some(crate::page::MAX_PAGE_SIZE as i64), None)?;
        loop {
            let p = self
                .store
                .list_volumes(actor.tenant_id, novel, page)
                .await?;
            max = p.items.iter().map(|v| v.seq).fold(max, i32::max);
            match (p.has_next_page, p.items.last()) {
                (true, Some(last)) => {
                    page = PageRequest::new(
                        Some(crate::page::MAX_PAGE_SIZE as i64),
                        Some(last.id.as_uuid()),
                    )?
                }
                _ => return Ok(max + 1),
            }
        }
    }

    async fn volume_of(
        &self,
        actor: &Actor,
        id: VolumeId,
        novel: NovelId,
    ) -> Result<Volume, Error> {
        let v = self
            .store
            .get_volume(actor.tenant_id, id)
            .await
            .or_not_found("volume")?;
        if v.novel_id != novel {
            return Err(Error::invalid(
                "volumeId",
                "the volume belongs to another novel",
            ));
        }
        Ok(v)
    }

    fn revision(
        &self,
        actor: &Actor,
        c: &Chapter,
        source: RevisionSource,
        job_id: Option<JobId>,
        note: String,
    ) -> ChapterRevision {
        ChapterRevision {
            id: RevisionId::new(),
            tenant_id: c.tenant_id,
            chapter_id: c.id,
            version: c.version,
            content: c.content.clone(),
            word_count: c.word_count,
            source,
            created_by: Some(actor.user_id),
            job_id,
            note,
            created_at: c.updated_at,
        }
    }

    async fn store_content(
        &self,
        actor: &Actor,
        mut c: Chapter,
        content: String,
        source: RevisionSource,
        note: String,
    ) -> Result<Chapter, Error> {
        let expected = c.version;
        c.version += 1;
        c.word_count = count_words(&content);
        c.content = content;
        c.updated_at = now();
        let rev = self.revision(actor, &c, source, None, note);
        self.store
            .save_chapter_content(&c, expected, &rev)
            .await
            .or_not_found("chapter")?;
        Ok(c)
    }
}

fn conflict_seq(e: crate::StoreError, what: &str, seq: i32) -> Error {
    match e {
        crate::StoreError::Conflict(_) => Error::Conflict(format!(
            "a {what} with seq {seq} already exists in this novel"
        )),
        crate::StoreError::NotFound => Error::NotFound { resource: "novel" },
        other => other.into(),
    }
}
