//! Export: `exportNovel` queues an EXPORT job; a worker renders the novel (or a range of
//! its chapters) as EPUB, Markdown or TXT and stores the book as a file tied to the job,
//! which `GenerationJob.file` then returns with its download link.

use super::generation::{GenerationService, announce, enqueue_or_fail, queued_job};
use super::runner::{JobRunner, RunOutcome};
use super::{FileService, audit, now};
use crate::StoreError;
use crate::auth::Actor;
use crate::book::{self, Book, BookChapter};
use crate::error::{Error, StoreResultExt};
use crate::ids::{FileId, NovelId};
use crate::model::*;
use crate::page::PageRequest;
use crate::ports::ChapterFilter;

/// Input of [`GenerationService::export_novel`].
#[derive(Debug, Clone)]
pub struct ExportNovel {
    /// The novel.
    pub novel_id: NovelId,
    /// Format and chapter range.
    pub spec: ExportSpec,
}

impl GenerationService {
    /// Records an EXPORT job for the novel and queues it; returns at once. Needs MEMBER.
    pub async fn export_novel(
        &self,
        actor: &Actor,
        input: ExportNovel,
    ) -> Result<GenerationJob, Error> {
        actor.require_write()?;
        let ExportSpec {
            from_seq, to_seq, ..
        } = input.spec;
        if from_seq.is_some_and(|f| f < 1) {
            return Err(Error::invalid("fromSeq", "must be at least 1"));
        }
        if let (Some(f), Some(t)) = (from_seq, to_seq)
            && t < f
        {
            return Err(Error::invalid("toSeq", "must not be less than fromSeq"));
        }
        let novel = self
            .store
            .get_novel(actor.tenant_id, input.novel_id)
            .await
            .or_not_found("novel")?;
        // A book needs room: refused at once when the tenant's files fill its quota
        // (the job checks again with the book's size).
        let quota = self
            .store
            .get_tenant(actor.tenant_id)
            .await
            .or_not_found("tenant")?
            .quota;
        let used = self.store.file_bytes_used(actor.tenant_id).await?;
        if used >= quota.max_file_bytes {
            return Err(Error::QuotaExceeded(format!(
                "the tenant's files take {used} bytes of its {} (delete files or ask an admin to raise maxFileBytes)",
                quota.max_file_bytes
            )));
        }
        let job = queued_job(
            actor.tenant_id,
            novel.id,
            None,
            JobKind::Export,
            JobInput {
                export: Some(input.spec),
                ..JobInput::default()
            },
            None,
            Some(actor.user_id),
        );
        self.jobs.insert_job(&job).await?;
        enqueue_or_fail(&*self.jobs, &*self.queue, &job).await?;
        announce(&*self.events, &job, JobStatus::Queued).await;
        audit(&*self.store, actor, "novel.export", "GenerationJob", job.id).await;
        Ok(job)
    }
}

/// The file name of a book: the title without characters file systems refuse.
fn file_name(title: &str, format: ExportFormat) -> String {
    let clean: String = title
        .trim()
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .take(120)
        .collect();
    let stem = if clean.trim().is_empty() {
        "novel".to_owned()
    } else {
        clean.trim().to_owned()
    };
    format!("{stem}.{}", format.extension())
}

impl JobRunner {
    /// Runs an EXPORT job: renders the chapters in range and stores the book, tied to
    /// the job. A book stored by an earlier, crashed attempt is kept (not made twice).
    pub(super) async fn export(&self, mut job: GenerationJob) -> RunOutcome {
        let Some(spec) = job.input.export else {
            return self
                .fail(job, 0, "an export job needs a format".into())
                .await;
        };
        let tenant = job.tenant_id;
        let existing = match self.store.find_file_by_job(tenant, job.id).await {
            Ok(f) => f,
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        let stored = match existing {
            Some(f) => f,
            None => match self.render_and_store(&job, spec).await {
                Ok(f) => f,
                Err(Ok(why)) => return self.fail(job, 0, why).await,
                Err(Err(why)) => return RunOutcome::Retry(why),
            },
        };
        job.status = JobStatus::Succeeded;
        job.finished_at = Some(now());
        match self.jobs.finish_job(&job).await {
            Ok(true) => {
                self.end_stream(&job, 1, JobStatus::Succeeded, None).await;
                RunOutcome::Succeeded
            }
            // Cancelled meanwhile: the book is not kept.
            Ok(false) => {
                let _ = self.store.delete_file(tenant, stored.id).await;
                RunOutcome::Cancelled
            }
            Err(e) => RunOutcome::Retry(e.to_string()),
        }
    }

    /// Renders and stores the book. `Err(Ok(why))`: fails for good; `Err(Err(why))`:
    /// transient, retry.
    async fn render_and_store(
        &self,
        job: &GenerationJob,
        spec: ExportSpec,
    ) -> Result<StoredFile, Result<String, String>> {
        let tenant = job.tenant_id;
        let novel = match self.store.get_novel(tenant, job.novel_id).await {
            Ok(n) => n,
            Err(StoreError::NotFound) => return Err(Ok("the novel was deleted".into())),
            Err(e) => return Err(Err(e.to_string())),
        };
        let mut chapters = Vec::new();
        let mut after = None;
        loop {
            let page = PageRequest::new(Some(100), after).map_err(|e| Err(e.to_string()))?;
            let got = self
                .store
                .list_chapters(tenant, novel.id, &ChapterFilter::default(), page)
                .await
                .map_err(|e| Err(e.to_string()))?;
            after = got.items.last().map(|c| c.id.as_uuid());
            for c in got.items {
                if spec.from_seq.is_none_or(|f| c.seq >= f)
                    && spec.to_seq.is_none_or(|t| c.seq <= t)
                {
                    chapters.push(BookChapter {
                        seq: c.seq,
                        title: c.title,
                        content: c.content,
                    });
                }
            }
            if !got.has_next_page {
                break;
            }
        }
        if chapters.is_empty() {
            return Err(Ok(
                "there are no chapters to export in the range asked for".into()
            ));
        }
        let book = Book {
            id: novel.id.as_uuid(),
            title: novel.title.clone(),
            description: novel.description.clone(),
            language: novel.language.clone(),
            modified: now(),
            chapters,
        };
        let bytes = book::render(&book, spec.format);
        let file = StoredFile {
            id: FileId::new(),
            tenant_id: tenant,
            novel_id: novel.id,
            job_id: Some(job.id),
            name: file_name(&novel.title, spec.format),
            content_type: spec.format.content_type().to_owned(),
            size: bytes.len() as i64,
            created_by: job.created_by,
            created_at: now(),
        };
        let files = self
            .files
            .clone()
            .unwrap_or_else(|| FileService::with_defaults(self.store.clone()));
        match files.save(&file, &bytes).await {
            Ok(()) => Ok(file),
            Err(Error::InvalidInput { message, .. }) => {
                Err(Ok(format!("the book is too large: {message}")))
            }
            Err(Error::NotFound { .. }) => Err(Ok("the novel was deleted".into())),
            Err(Error::QuotaExceeded(why)) => Err(Ok(format!("quota exceeded: {why}"))),
            Err(e) => Err(Err(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_path_characters() {
        assert_eq!(file_name("a/b: c?", ExportFormat::Epub), "a_b_ c_.epub");
        assert_eq!(file_name("  ", ExportFormat::Txt), "novel.txt");
        assert_eq!(file_name("长路", ExportFormat::Markdown), "长路.md");
    }
}
