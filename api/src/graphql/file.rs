//! The file subgraph: stored files, manuscript import and book export — `files(novelId)`,
//! `previewImport`, `importManuscript`, `exportNovel`, `deleteFile` and
//! `GenerationJob.file`. The same process serves the file routes (`POST /files`,
//! `POST /files/import`, `GET /files/{id}?token=…`; see `server::files`).
//!
//! The gateway merges the story module's `FileQuery`/`FileMutation` and serves
//! `GenerationJob.file` on the story's `GenerationJob`. Built alone (see
//! [`SubgraphQuery`]), the subgraph owns `GenerationJob.file` as a field of the
//! `GenerationJob` entity (`@key(fields: "id")`, [`FileGenerationJob`]: a federation router
//! asks it for the file of a job story-gen found), and returns jobs as that entity and
//! novels as references, which the router completes from story-gen. No type of it is shared
//! with another subgraph but `PageInfo`.
//!
//! Hive Router, the production gateway, refuses a GraphQL multipart request (an upload)
//! with 415, so behind it `previewImport` and `importManuscript` are reached with an upload
//! only through a router that carries multipart requests; a client of the production
//! gateway sends the manuscript to `POST /files/import` of this service instead (the
//! Ingress routes `/files` here).

use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::decode;
use crate::graphql::refs::NovelRef;
use crate::graphql::story::{
    DeleteFileInput, DeleteFilePayload, ExportNovelInput, FileQuery, ImportManuscriptInput,
    StoredFile, delete_file, export_novel, import_manuscript,
};
use async_graphql::{Context, ID, MergedObject, Object, SimpleObject};
use znovel_domain::ids::JobId;

/// The file subgraph's share of the `GenerationJob` entity (`@key(fields: "id")`): its
/// `file`. A federation router resolves the other fields from story-gen.
pub struct FileGenerationJob {
    /// The job's global ID.
    pub id: ID,
}

impl FileGenerationJob {
    fn of(job: &znovel_domain::model::GenerationJob) -> Self {
        Self {
            id: crate::graphql::ids::to_id(job.id),
        }
    }
}

// Described like the story's `GenerationJob`, so the composed supergraph equals the gateway.
/// A generation job: one request to write a chapter, and what happened to it.
#[Object(name = "GenerationJob")]
impl FileGenerationJob {
    /// Global ID.
    async fn id(&self) -> &ID {
        &self.id
    }
    /// The file of the job: the book an EXPORT produced, or the manuscript an IMPORT
    /// reads; null for other jobs and until an export has finished.
    async fn file(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StoredFile>> {
        let (s, actor) = call(ctx)?;
        let id: JobId = decode(&self.id, "id")?;
        Ok(s.files.for_job(&actor, id).await.gql()?.map(StoredFile))
    }
}

// `ExportNovelPayload` of the file subgraph built alone: the job as the file subgraph's
// `GenerationJob` entity. (Described like the gateway's.)
/// Result of `exportNovel`.
#[derive(SimpleObject)]
#[graphql(name = "ExportNovelPayload")]
pub struct FileExportNovelPayload {
    /// The queued EXPORT job; its `file` is the book once it SUCCEEDED.
    pub job: FileGenerationJob,
}

// `ImportManuscriptPayload` of the file subgraph built alone: the job as the file
// subgraph's `GenerationJob` entity, the novel a reference. (Described like the gateway's.)
/// Result of `importManuscript`.
#[derive(SimpleObject)]
#[graphql(name = "ImportManuscriptPayload")]
pub struct FileImportManuscriptPayload {
    /// The queued IMPORT job: its `progress` counts the chapters created, its `file` is
    /// the manuscript; follow it in `jobEvents`.
    pub job: FileGenerationJob,
    /// The novel the chapters go to (created for a new one).
    pub novel: NovelRef,
}

/// The `GenerationJob` entity resolver a federation router calls.
#[derive(Default)]
pub struct FileEntities;

/// File queries.
#[Object]
impl FileEntities {
    /// Resolves a `GenerationJob` reference to the file subgraph's share of it (`file`).
    #[graphql(entity)]
    async fn find_generation_job_by_id(
        &self,
        #[graphql(desc = "The job's global ID.")] id: ID,
    ) -> async_graphql::Result<FileGenerationJob> {
        decode::<JobId>(&id, "id")?;
        Ok(FileGenerationJob { id })
    }
}

/// The file mutations of the file subgraph built alone (jobs and novels as references).
#[derive(Default)]
pub struct SubgraphFileMutation;

/// File mutations.
#[Object]
impl SubgraphFileMutation {
    /// Exports a novel, or a range of its chapters, as a book; returns the queued EXPORT
    /// job at once. When it SUCCEEDED, its `file` is the book (watch it in `jobEvents`).
    #[tracing::instrument(skip_all, name = "exportNovel")]
    async fn export_novel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to export.")] input: ExportNovelInput,
    ) -> async_graphql::Result<FileExportNovelPayload> {
        let job = export_novel(ctx, input).await?;
        Ok(FileExportNovelPayload {
            job: FileGenerationJob::of(&job),
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
    ) -> async_graphql::Result<FileImportManuscriptPayload> {
        let (job, novel) = import_manuscript(ctx, input).await?;
        Ok(FileImportManuscriptPayload {
            job: FileGenerationJob::of(&job),
            novel: NovelRef {
                id: crate::graphql::ids::to_id(novel.id),
            },
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

// Root query type of the file subgraph built alone: `files` and `previewImport` (as the
// gateway serves them: they return no other subgraph's type) and the entity resolver.
// (Described like the gateway's, so the composed supergraph equals it.)
/// Every read the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct SubgraphQuery(FileQuery, FileEntities);

// Root mutation type of the file subgraph built alone.
/// Every change the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct SubgraphMutation(SubgraphFileMutation);
