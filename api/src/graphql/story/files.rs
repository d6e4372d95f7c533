//! Stored files, import and export: `files(novelId)`, `previewImport`, `deleteFile`,
//! `exportNovel`, `importManuscript`, and `GenerationJob.file`, as the gateway serves them.
//! A file is downloaded with `GET /files/{id}?token=…` (its `downloadUrl`, a short-lived
//! signed link; see `server::files`). In the federation they are the file subgraph's
//! (`graphql::file`): story-gen leaves them out of its schema.

use crate::graphql::call;
use crate::graphql::connection::{connection, cost, page_request};
use crate::graphql::errors::{ResultExt, to_gql};
use crate::graphql::ids::{decode, to_id};
use crate::graphql::story::{
    GenerationJob, ImportManuscriptInput, ImportManuscriptPayload, ImportPreview,
};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use znovel_domain::model as m;
use znovel_domain::services::ExportNovel;

/// A stored file: an uploaded manuscript or an exported book.
pub struct StoredFile(pub m::StoredFile);

/// A stored file: an uploaded manuscript or an exported book.
#[Object]
impl StoredFile {
    /// Global ID.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// File name, e.g. `My Novel.epub`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Media type, e.g. `application/epub+zip`.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }
    /// Size in bytes.
    async fn size(&self) -> i64 {
        self.0.size
    }
    /// When it was stored.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Where to download it: `/files/{id}?token=…`, relative to this API's origin. The
    /// link carries no credential and expires after a few minutes; read this field again
    /// for a fresh one.
    async fn download_url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let (s, _actor) = call(ctx)?;
        Ok(download_url(&self.0, &s.files.download_token(&self.0)))
    }
}

/// The download path of a file with a token.
pub fn download_url(file: &m::StoredFile, token: &str) -> String {
    format!("/files/{}?token={token}", to_id(file.id).as_str())
}

connection!(
    StoredFileConnection,
    StoredFileEdge,
    StoredFile,
    m::StoredFile,
    "A page of stored files.",
    "A stored file in a page."
);

/// The format of an exported book.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "m::ExportFormat")]
pub enum ExportFormat {
    /// EPUB 3: navigation document, metadata, a cover page, one document per chapter.
    Epub,
    /// Markdown: the title as `#`, each chapter as `##`.
    Markdown,
    /// Plain UTF-8 text.
    Txt,
}

/// Input of `exportNovel`.
#[derive(InputObject)]
pub struct ExportNovelInput {
    /// The novel.
    pub novel_id: ID,
    /// The format of the book.
    pub format: ExportFormat,
    /// First chapter seq (inclusive); default: the first chapter.
    pub from_seq: Option<i32>,
    /// Last chapter seq (inclusive); default: the last chapter.
    pub to_seq: Option<i32>,
}

/// Result of `exportNovel`.
#[derive(SimpleObject)]
pub struct ExportNovelPayload {
    /// The queued EXPORT job; its `file` is the book once it SUCCEEDED.
    pub job: GenerationJob,
}

/// Input of `deleteFile`.
#[derive(InputObject)]
pub struct DeleteFileInput {
    /// The file to delete.
    pub file_id: ID,
}

/// Result of `deleteFile`.
#[derive(SimpleObject)]
pub struct DeleteFilePayload {
    /// The file as it was before it was deleted.
    pub file: StoredFile,
}

/// File queries.
#[derive(Default)]
pub struct FileQuery;

/// File queries.
#[Object]
impl FileQuery {
    /// A novel's stored files (manuscripts and exported books), newest first.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn files(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<StoredFileConnection> {
        let (s, actor) = call(ctx)?;
        let novel = decode(&novel_id, "novelId")?;
        let req = page_request(first, after.as_deref())?;
        let page = s.files.files(&actor, novel, req).await.gql()?;
        Ok(StoredFileConnection::new(page, &req))
    }

    /// Splits a manuscript into volumes and chapters and says what importing it would
    /// create — the format and encoding found, each chapter with the seq it would get,
    /// its title, length and first characters, and warnings (such as no chapter heading
    /// found: the whole text one chapter). Writes nothing.
    #[tracing::instrument(skip_all, name = "previewImport")]
    async fn preview_import(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The manuscript and where it would go.")] input: ImportManuscriptInput,
    ) -> async_graphql::Result<ImportPreview> {
        let (s, actor) = call(ctx)?;
        let request = super::import::request(ctx, input, &s.files).await?;
        s.files
            .preview_import(&actor, &request)
            .await
            .gql()
            .map(ImportPreview::from)
    }
}

/// Queues the EXPORT job of `input`: what `exportNovel` does in the gateway and in the
/// file subgraph.
pub(crate) async fn export_novel(
    ctx: &Context<'_>,
    input: ExportNovelInput,
) -> async_graphql::Result<m::GenerationJob> {
    let (s, actor) = call(ctx)?;
    let request = ExportNovel {
        novel_id: decode(&input.novel_id, "novelId")?,
        spec: m::ExportSpec {
            format: input.format.into(),
            from_seq: input.from_seq,
            to_seq: input.to_seq,
        },
    };
    s.generation()
        .map_err(to_gql)?
        .export_novel(&actor, request)
        .await
        .gql()
}

/// Stores the manuscript of `input` and queues its IMPORT job; returns the job and the
/// novel the chapters go to: what `importManuscript` does in the gateway and in the file
/// subgraph.
pub(crate) async fn import_manuscript(
    ctx: &Context<'_>,
    input: ImportManuscriptInput,
) -> async_graphql::Result<(m::GenerationJob, m::Novel)> {
    let (s, actor) = call(ctx)?;
    let generation = s.generation().map_err(to_gql)?;
    let request = super::import::request(ctx, input, &s.files).await?;
    generation
        .import_manuscript(&actor, &s.files, request)
        .await
        .gql()
}

/// Deletes the file of `input`: what `deleteFile` does in the gateway and in the file
/// subgraph.
pub(crate) async fn delete_file(
    ctx: &Context<'_>,
    input: DeleteFileInput,
) -> async_graphql::Result<DeleteFilePayload> {
    let (s, actor) = call(ctx)?;
    let id = decode(&input.file_id, "fileId")?;
    let file = s.files.file(&actor, id).await.gql()?;
    s.files.delete(&actor, id).await.gql()?;
    Ok(DeleteFilePayload {
        file: StoredFile(file),
    })
}

/// File mutations.
#[derive(Default)]
pub struct FileMutation;

/// File mutations.
#[Object]
impl FileMutation {
    /// Exports a novel, or a range of its chapters, as a book; returns the queued EXPORT
    /// job at once. When it SUCCEEDED, its `file` is the book (watch it in `jobEvents`).
    #[tracing::instrument(skip_all, name = "exportNovel")]
    async fn export_novel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to export.")] input: ExportNovelInput,
    ) -> async_graphql::Result<ExportNovelPayload> {
        Ok(ExportNovelPayload {
            job: GenerationJob(export_novel(ctx, input).await?),
        })
    }

    /// Imports a manuscript: stores the file, creates the novel (or takes `novelId`, the
    /// chapters going after its last one) and queues an IMPORT job that creates the
    /// volumes and chapters in order (each remembered by the story memory); returns the
    /// job and the novel at once. The job's `progress` counts the chapters created; it
    /// resumes after a crash without duplicating a chapter, and `cancelGeneration` stops
    /// it (the chapters already created stay). A bad file is refused before anything is
    /// written.
    #[tracing::instrument(skip_all, name = "importManuscript")]
    async fn import_manuscript(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The manuscript and where it goes.")] input: ImportManuscriptInput,
    ) -> async_graphql::Result<ImportManuscriptPayload> {
        let (job, novel) = import_manuscript(ctx, input).await?;
        Ok(ImportManuscriptPayload {
            job: GenerationJob(job),
            novel: crate::graphql::story::Novel(novel),
        })
    }

    /// Deletes a stored file.
    #[tracing::instrument(skip_all, name = "deleteFile")]
    async fn delete_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The file to delete.")] input: DeleteFileInput,
    ) -> async_graphql::Result<DeleteFilePayload> {
        delete_file(ctx, input).await
    }
}
