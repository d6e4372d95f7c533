//! Import: `previewImport` splits a manuscript and says what an import would create
//! (writing nothing); `importManuscript` stores the manuscript as a file, creates the
//! novel (or appends to one, after its last chapter) and queues an IMPORT job whose
//! worker creates the volumes and chapters in order.
//!
//! Everything that can be wrong with the request — a file over the size limit, one
//! that is not a manuscript, a zip bomb, a path leaving an EPUB, another tenant's novel,
//! a chapter quota — is refused before anything is written.
//!
//! The worker is resumable and idempotent: each volume and chapter it creates has an id
//! derived from the job and its ordinal (a UUID v7 with the job's time prefix), so an
//! attempt after a crash finds the chapters already created and skips them; it reports
//! progress (chapters done of all) on the job and in `jobEvents`, and a cancel stops it
//! between two chapters (the chapters already created stay). Each chapter with text is
//! given to memory like a chapter created with content.

use super::generation::{GenerationService, announce, enqueue_or_fail, queued_job};
use super::runner::{JobRunner, RunOutcome, StopReason};
use super::story::{CreateNovel, MAX_SEQ, StoryService};
use super::{FileService, audit, now};
use crate::StoreError;
use crate::auth::Actor;
use crate::book::{ImportError, Manuscript, ManuscriptChapter, parse_manuscript};
use crate::error::{Error, StoreResultExt};
use crate::ids::{ChapterId, FileId, JobId, NovelId, RevisionId, VolumeId};
use crate::model::*;
use crate::page::PageRequest;
use crate::text::{self, MAX_CONTENT, MAX_TEXT, MAX_TITLE, count_words};
use futures_util::future::Either;
use sha2::{Digest, Sha256};
use std::future::Future;

/// Characters of a chapter's text a preview shows.
pub const EXCERPT_CHARS: usize = 200;

/// Input of [`FileService::preview_import`] and [`GenerationService::import_manuscript`].
#[derive(Debug, Clone)]
pub struct ImportManuscript {
    /// The uploaded file's name (its extension may name the format).
    pub file_name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Append to this novel; `None`: a new novel.
    pub novel_id: Option<NovelId>,
    /// The new novel's title; default: the manuscript's own, else the file name.
    pub title: Option<String>,
    /// The format; `None`: detected from the name and content.
    pub format: Option<ManuscriptFormat>,
}

/// What an import would create.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPreview {
    /// The format the manuscript is read as.
    pub format: ManuscriptFormat,
    /// The text encoding it was decoded from.
    pub encoding: String,
    /// The title of the novel the chapters go to (new or existing).
    pub title: String,
    /// Whether a new novel would be created.
    pub new_novel: bool,
    /// The volumes, in order.
    pub volumes: Vec<String>,
    /// The chapters, in order, with the seqs they would get.
    pub chapters: Vec<PreviewChapter>,
    /// Total length (words; CJK characters).
    pub word_count: i64,
    /// What the author should know about the split.
    pub warnings: Vec<String>,
}

/// One chapter of an [`ImportPreview`].
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewChapter {
    /// The seq it would get in the novel.
    pub seq: i32,
    /// Its title.
    pub title: String,
    /// The title of its volume, if any.
    pub volume: Option<String>,
    /// Its length.
    pub word_count: i64,
    /// Its first characters.
    pub excerpt: String,
}

/// A checked import request.
struct Prepared {
    manuscript: Manuscript,
    novel: Option<Novel>,
    title: String,
    file_name: String,
    preview: ImportPreview,
}

/// The file name to store: no directories, no characters file systems refuse.
fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base
        .trim()
        .chars()
        .map(|c| match c {
            ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .take(200)
        .collect();
    if clean.trim().is_empty() {
        "manuscript".into()
    } else {
        clean.trim().to_owned()
    }
}

fn stem(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((s, _)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => name.to_owned(),
    }
}

/// The language a manuscript is written in: `zh-CN` when CJK characters are a good part
/// of its text, else `en`.
fn language_of(m: &Manuscript) -> &'static str {
    let sample: String = m
        .chapters
        .iter()
        .flat_map(|c| c.content.chars())
        .filter(|c| c.is_alphanumeric())
        .take(5_000)
        .collect();
    let cjk = sample.chars().filter(|c| text::is_cjk_char(*c)).count();
    if cjk * 3 > sample.chars().count() {
        "zh-CN"
    } else {
        "en"
    }
}

fn file_error(e: ImportError) -> Error {
    Error::invalid("file", e.to_string())
}

impl FileService {
    /// Splits a manuscript and says what importing it would create; writes nothing.
    pub async fn preview_import(
        &self,
        actor: &Actor,
        input: &ImportManuscript,
    ) -> Result<ImportPreview, Error> {
        Ok(self.prepare_import(actor, input).await?.preview)
    }

    /// Checks an import request: size, manuscript, novel, quotas (chapters, file bytes).
    async fn prepare_import(
        &self,
        actor: &Actor,
        input: &ImportManuscript,
    ) -> Result<Prepared, Error> {
        self.check_size("file", input.bytes.len())?;
        let file_name = clean_file_name(&input.file_name);
        let title = input
            .title
            .as_deref()
            .map(|t| text::Title::parse("title", t))
            .transpose()?
            .map(text::Title::into_inner);
        let manuscript =
            parse_manuscript(&input.bytes, &file_name, input.format).map_err(file_error)?;
        for (i, c) in manuscript.chapters.iter().enumerate() {
            let n = c.content.chars().count();
            if n > MAX_CONTENT {
                return Err(Error::invalid(
                    "file",
                    format!(
                        "chapter {} ({}) has {n} characters; a chapter holds at most {MAX_CONTENT}",
                        i + 1,
                        c.title
                    ),
                ));
            }
        }
        let tenant = self
            .store
            .get_tenant(actor.tenant_id)
            .await
            .or_not_found("tenant")?;
        let count = manuscript.chapters.len() as i64;
        let (novel, first_seq, existing) = match input.novel_id {
            Some(id) => {
                let novel = self
                    .store
                    .get_novel(actor.tenant_id, id)
                    .await
                    .or_not_found("novel")?;
                let last = self.store.max_chapter_seq(actor.tenant_id, id).await?;
                let existing = self.store.count_chapters(actor.tenant_id, id).await?;
                (Some(novel), last.unwrap_or(0) + 1, existing)
            }
            None => (None, 1, 0),
        };
        if existing + count > tenant.quota.max_chapters_per_novel {
            return Err(Error::QuotaExceeded(format!(
                "a novel may hold at most {} chapters; the manuscript has {count}{}",
                tenant.quota.max_chapters_per_novel,
                if existing > 0 {
                    format!(" and the novel {existing}")
                } else {
                    String::new()
                }
            )));
        }
        self.check_quota(actor.tenant_id, input.bytes.len() as i64)
            .await?;
        if i64::from(first_seq) + count - 1 > MAX_SEQ {
            return Err(Error::invalid(
                "novelId",
                format!("chapter seqs would pass {MAX_SEQ}"),
            ));
        }
        let title = match &novel {
            Some(n) => n.title.clone(),
            None => title
                .or_else(|| manuscript.title.clone())
                .unwrap_or_else(|| stem(&file_name))
                .chars()
                .take(MAX_TITLE)
                .collect(),
        };
        let preview = ImportPreview {
            format: manuscript.format,
            encoding: manuscript.encoding.clone(),
            title: title.clone(),
            new_novel: novel.is_none(),
            volumes: manuscript.volumes.clone(),
            chapters: manuscript
                .chapters
                .iter()
                .enumerate()
                .map(|(i, c)| PreviewChapter {
                    seq: first_seq + i as i32,
                    title: c.title.clone(),
                    volume: c.volume.and_then(|v| manuscript.volumes.get(v).cloned()),
                    word_count: count_words(&c.content),
                    excerpt: c.content.chars().take(EXCERPT_CHARS).collect(),
                })
                .collect(),
            word_count: manuscript
                .chapters
                .iter()
                .map(|c| count_words(&c.content))
                .sum(),
            warnings: manuscript.warnings.clone(),
        };
        Ok(Prepared {
            manuscript,
            novel,
            title,
            file_name,
            preview,
        })
    }
}

impl GenerationService {
    /// Stores the manuscript, creates the novel (or takes the existing one) and queues
    /// an IMPORT job; returns the job and the novel at once. Needs MEMBER. Every check
    /// runs before anything is written.
    pub async fn import_manuscript(
        &self,
        actor: &Actor,
        files: &FileService,
        input: ImportManuscript,
    ) -> Result<(GenerationJob, Novel), Error> {
        actor.require_write()?;
        let prepared = files.prepare_import(actor, &input).await?;
        let novel = match prepared.novel {
            Some(n) => n,
            None => {
                let description: String = prepared
                    .manuscript
                    .description
                    .chars()
                    .take(MAX_TEXT)
                    .collect();
                StoryService::new(self.store.clone())
                    .create_novel(
                        actor,
                        CreateNovel {
                            title: prepared.title.clone(),
                            description: Some(description),
                            language: Some(language_of(&prepared.manuscript).into()),
                            ..CreateNovel::default()
                        },
                    )
                    .await?
            }
        };
        let total = prepared.manuscript.chapters.len() as i32;
        let job = GenerationJob {
            progress: Some(JobProgress { done: 0, total }),
            ..queued_job(
                actor.tenant_id,
                novel.id,
                None,
                JobKind::Import,
                JobInput {
                    import: Some(ImportSpec {
                        format: prepared.manuscript.format,
                        chapters: total,
                    }),
                    ..JobInput::default()
                },
                None,
                Some(actor.user_id),
            )
        };
        self.jobs.insert_job(&job).await?;
        let file = StoredFile {
            id: FileId::new(),
            tenant_id: actor.tenant_id,
            novel_id: novel.id,
            job_id: Some(job.id),
            name: prepared.file_name,
            content_type: prepared.manuscript.format.content_type().to_owned(),
            size: input.bytes.len() as i64,
            created_by: Some(actor.user_id),
            created_at: now(),
        };
        if let Err(e) = files.save(&file, &input.bytes).await {
            let mut failed = job.clone();
            failed.status = JobStatus::Failed;
            failed.error = Some("the manuscript could not be stored".into());
            failed.finished_at = Some(now());
            let _ = self.jobs.finish_job(&failed).await;
            return Err(e);
        }
        enqueue_or_fail(&*self.jobs, &*self.queue, &job).await?;
        announce(&*self.events, &job, JobStatus::Queued).await;
        audit(&*self.store, actor, "novel.import", "GenerationJob", job.id).await;
        Ok((job, novel))
    }
}

/// The id of the `ordinal`-th `what` (volume, chapter) an import job creates: a UUID v7
/// with the job's time prefix and the rest from a hash of job, kind and ordinal — the
/// same on every attempt, so a resumed job finds what it already created.
fn derived_id(job: JobId, what: &str, ordinal: usize) -> uuid::Uuid {
    let j = job.as_uuid();
    let digest = Sha256::new()
        .chain_update(j.as_bytes())
        .chain_update(what.as_bytes())
        .chain_update((ordinal as u64).to_be_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&j.as_bytes()[..6]);
    b[6..].copy_from_slice(&digest[..10]);
    b[6] = (b[6] & 0x0F) | 0x70;
    b[8] = (b[8] & 0x3F) | 0x80;
    uuid::Uuid::from_bytes(b)
}

/// How a step of an import failed: for good, or transiently (retry).
enum Step {
    Fail(String),
    Retry(String),
}

impl From<StoreError> for Step {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Step::Fail("the novel was deleted".into()),
            e => Step::Retry(e.to_string()),
        }
    }
}

impl JobRunner {
    /// Runs an IMPORT job: parses its file again and creates what is not created yet,
    /// in order, reporting progress after each chapter.
    pub(super) async fn import(
        &self,
        mut job: GenerationJob,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        futures_util::pin_mut!(stop);
        let Some(spec) = job.input.import.clone() else {
            return self
                .fail(job, 0, "an import job needs a manuscript".into())
                .await;
        };
        let tenant = job.tenant_id;
        let file = match self.store.find_file_by_job(tenant, job.id).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                return self
                    .fail(job, 0, "the manuscript file was deleted".into())
                    .await;
            }
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        let bytes = match self.store.get_file_content(tenant, file.id).await {
            Ok(b) => b,
            Err(StoreError::NotFound) => {
                return self
                    .fail(job, 0, "the manuscript file was deleted".into())
                    .await;
            }
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        let manuscript = match parse_manuscript(&bytes, &file.name, Some(spec.format)) {
            Ok(m) => m,
            Err(e) => return self.fail(job, 0, e.to_string()).await,
        };
        let total = manuscript.chapters.len() as i32;
        let mut volumes = Vec::new();
        for (i, title) in manuscript.volumes.iter().enumerate() {
            match self.import_volume(&job, i, title).await {
                Ok(id) => volumes.push(id),
                Err(Step::Fail(why)) => return self.fail(job, 0, why).await,
                Err(Step::Retry(why)) => return RunOutcome::Retry(why),
            }
        }
        for (i, c) in manuscript.chapters.iter().enumerate() {
            let volume = c.volume.and_then(|v| volumes.get(v).copied());
            // A resumed job passes the chapters an earlier attempt created: its progress
            // stays where it was until this attempt gets further.
            let progress = JobProgress {
                done: i as i32 + 1,
                total,
            };
            let further = job.progress.is_none_or(|p| p.done < progress.done);
            // Each chapter races the stop signal (a cancel, or the worker shutting down):
            // a chapter interrupted half-way is found (or created) by the next attempt.
            let outcome = {
                let step = std::pin::pin!(self.import_step(
                    &job,
                    i,
                    c,
                    volume,
                    &file.name,
                    further.then_some(progress)
                ));
                match futures_util::future::select(stop.as_mut(), step).await {
                    Either::Left((reason, _)) => Err(Ok(reason)),
                    Either::Right((result, _)) => result.map_err(Err),
                }
            };
            match outcome {
                Ok(()) => {}
                Err(Ok(StopReason::Cancelled)) => {
                    self.end_stream(&job, 1, JobStatus::Cancelled, Some("cancelled".into()))
                        .await;
                    return RunOutcome::Cancelled;
                }
                Err(Ok(StopReason::Shutdown)) => {
                    return RunOutcome::Retry("worker shutting down".into());
                }
                Err(Err(Step::Fail(why))) => return self.fail(job, 0, why).await,
                Err(Err(Step::Retry(why))) => return RunOutcome::Retry(why),
            }
            if further {
                job.progress = Some(progress);
                announce(&*self.events, &job, JobStatus::Running).await;
            }
        }
        job.status = JobStatus::Succeeded;
        job.finished_at = Some(now());
        match self.jobs.finish_job(&job).await {
            Ok(true) => {
                self.end_stream(&job, 1, JobStatus::Succeeded, None).await;
                RunOutcome::Succeeded
            }
            Ok(false) => RunOutcome::Cancelled,
            Err(e) => RunOutcome::Retry(e.to_string()),
        }
    }

    /// Creates (or finds) one chapter, gives it to memory, and records the progress
    /// (if any: not while a resumed job passes what an earlier attempt did).
    async fn import_step(
        &self,
        job: &GenerationJob,
        ordinal: usize,
        c: &ManuscriptChapter,
        volume: Option<VolumeId>,
        file_name: &str,
        progress: Option<JobProgress>,
    ) -> Result<(), Step> {
        let chapter = self
            .import_chapter(job, ordinal, c, volume, file_name)
            .await?;
        if chapter.version > 0
            && let Some(memory) = &self.memory
            && let Err(e) = memory.scheduler.remember(&chapter, job.created_by).await
        {
            tracing::warn!(chapter = %chapter.id, error = %e, "memory job of an imported chapter not queued");
        }
        let Some(progress) = progress else {
            return Ok(());
        };
        self.jobs
            .set_job_progress(job.tenant_id, job.id, progress)
            .await
            .map_err(|e| Step::Retry(e.to_string()))
    }

    /// The `ordinal`-th volume of the import: the one an earlier attempt created, or a
    /// new one after the novel's last volume.
    async fn import_volume(
        &self,
        job: &GenerationJob,
        ordinal: usize,
        title: &str,
    ) -> Result<VolumeId, Step> {
        let tenant = job.tenant_id;
        let id = VolumeId::from_uuid(derived_id(job.id, "volume", ordinal));
        match self.store.get_volume(tenant, id).await {
            Ok(v) => return Ok(v.id),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(Step::Retry(e.to_string())),
        }
        for _ in 0..5 {
            let seq = self.last_volume_seq(job).await? + 1;
            let t = now();
            let volume = Volume {
                id,
                tenant_id: tenant,
                novel_id: job.novel_id,
                seq,
                title: title.to_owned(),
                summary: String::new(),
                created_at: t,
                updated_at: t,
            };
            match self.store.insert_volume(&volume).await {
                Ok(()) => return Ok(id),
                Err(StoreError::Conflict(_)) => {
                    if self.store.get_volume(tenant, id).await.is_ok() {
                        return Ok(id);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Step::Retry("no free volume seq".into()))
    }

    async fn last_volume_seq(&self, job: &GenerationJob) -> Result<i32, Step> {
        let mut max = 0;
        let mut after = None;
        loop {
            let page = PageRequest::new(Some(crate::page::MAX_PAGE_SIZE as i64), after)
                .map_err(|e| Step::Retry(e.to_string()))?;
            let p = self
                .store
                .list_volumes(job.tenant_id, job.novel_id, page)
                .await?;
            max = p.items.iter().map(|v| v.seq).fold(max, i32::max);
            match (p.has_next_page, p.items.last()) {
                (true, Some(last)) => after = Some(last.id.as_uuid()),
                _ => return Ok(max),
            }
        }
    }

    /// The `ordinal`-th chapter of the import: the one an earlier attempt created, or a
    /// new one after the novel's last chapter, its text as revision 1 (source IMPORT).
    async fn import_chapter(
        &self,
        job: &GenerationJob,
        ordinal: usize,
        c: &ManuscriptChapter,
        volume: Option<VolumeId>,
        file_name: &str,
    ) -> Result<Chapter, Step> {
        let tenant = job.tenant_id;
        let id = ChapterId::from_uuid(derived_id(job.id, "chapter", ordinal));
        match self.store.get_chapter(tenant, id).await {
            Ok(existing) => return Ok(existing),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(Step::Retry(e.to_string())),
        }
        let has_content = !c.content.is_empty();
        let word_count = count_words(&c.content);
        for _ in 0..5 {
            let seq = self
                .store
                .max_chapter_seq(tenant, job.novel_id)
                .await?
                .unwrap_or(0)
                + 1;
            let t = now();
            let chapter = Chapter {
                id,
                tenant_id: tenant,
                novel_id: job.novel_id,
                volume_id: volume,
                seq,
                title: c.title.clone(),
                outline: String::new(),
                content: c.content.clone(),
                summary: String::new(),
                summary_origin: Origin::Author,
                story_time_start: None,
                story_time_end: None,
                word_count,
                target_word_count: None,
                status: ChapterStatus::Draft,
                version: i32::from(has_content),
                created_at: t,
                updated_at: t,
            };
            let revision = has_content.then(|| ChapterRevision {
                id: RevisionId::new(),
                tenant_id: tenant,
                chapter_id: id,
                version: 1,
                content: c.content.clone(),
                word_count,
                source: RevisionSource::Import,
                created_by: job.created_by,
                job_id: Some(job.id),
                note: format!("imported from {file_name}"),
                created_at: t,
            });
            match self.store.insert_chapter(&chapter, revision.as_ref()).await {
                Ok(()) => return Ok(chapter),
                // Created meanwhile by another attempt, or its seq taken: look again.
                Err(StoreError::Conflict(_)) => {
                    if let Ok(existing) = self.store.get_chapter(tenant, id).await {
                        return Ok(existing);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Step::Retry("no free chapter seq".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_v7_and_distinct() {
        let job = JobId::new();
        let a = derived_id(job, "chapter", 0);
        assert_eq!(a, derived_id(job, "chapter", 0));
        assert_ne!(a, derived_id(job, "chapter", 1));
        assert_ne!(a, derived_id(job, "volume", 0));
        assert_ne!(a, derived_id(JobId::new(), "chapter", 0));
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.as_bytes()[..6], job.as_uuid().as_bytes()[..6]);
    }

    #[test]
    fn stored_file_names_lose_directories() {
        assert_eq!(clean_file_name("../../a/b.txt"), "b.txt");
        assert_eq!(clean_file_name("C:\\x\\书.epub"), "书.epub");
        assert_eq!(clean_file_name("  "), "manuscript");
        assert_eq!(stem("长路.txt"), "长路");
    }
}
