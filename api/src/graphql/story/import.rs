//! Manuscript import types: `ImportManuscriptInput` (the file is a GraphQL multipart
//! upload), `ImportPreview` (what `previewImport` answers) and `ImportManuscriptPayload`.
//! The resolvers are in `files.rs` with the other file operations.

use crate::graphql::errors::{ErrorCode, to_gql};
use crate::graphql::story::{GenerationJob, Novel};
use async_graphql::{Context, Enum, ID, InputObject, SimpleObject, Upload};
use std::io::Read;
use znovel_domain::Error;
use znovel_domain::model as m;
use znovel_domain::services as s;

/// The format of an uploaded manuscript.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "m::ManuscriptFormat")]
pub enum ManuscriptFormat {
    /// Plain text: UTF-8, UTF-16 with a byte order mark, or GB18030/GBK; split at chapter
    /// headings ("Chapter 12", "CHAPTER XII", "第十二章") and volume headings ("第一卷").
    Txt,
    /// Markdown, split at `#` headings.
    Markdown,
    /// EPUB: chapters in spine order, titled from the table of contents.
    Epub,
    /// Word (DOCX): split at heading-styled paragraphs ("Heading 1", "Heading 2", …),
    /// else at heading lines as TXT is.
    Docx,
}

/// Input of `previewImport` and `importManuscript`.
#[derive(InputObject)]
pub struct ImportManuscriptInput {
    /// The manuscript, sent as a GraphQL multipart request upload (TXT, Markdown, EPUB
    /// or DOCX; at most the server's file size limit).
    pub file: Upload,
    /// Append the chapters to this novel, after its last chapter; absent: a new novel.
    pub novel_id: Option<ID>,
    /// The new novel's title; default: the manuscript's own title, else the file name.
    pub title: Option<String>,
    /// The manuscript's format; absent: detected from the file name and content.
    pub format: Option<ManuscriptFormat>,
}

/// A chapter an import would create.
#[derive(SimpleObject)]
pub struct ImportChapterPreview {
    /// The seq it would get in the novel.
    pub seq: i32,
    /// Its title (the heading it was found under).
    pub title: String,
    /// The title of its volume, if the manuscript has volumes.
    pub volume: Option<String>,
    /// Its length (words; CJK: characters).
    pub word_count: i64,
    /// Its first characters (at most 200).
    pub excerpt: String,
}

/// What importing a manuscript would create; nothing is written to answer it.
#[derive(SimpleObject)]
pub struct ImportPreview {
    /// The format the manuscript is read as.
    pub format: ManuscriptFormat,
    /// The text encoding it was decoded from: `UTF-8`, `UTF-16LE`, `UTF-16BE` or `GB18030`.
    pub encoding: String,
    /// The title of the novel the chapters would go to (the new novel's, or the existing one's).
    pub title: String,
    /// Whether a new novel would be created.
    pub new_novel: bool,
    /// The volume titles found, in order.
    pub volumes: Vec<String>,
    /// The chapters found, in order, with the seqs they would get.
    pub chapters: Vec<ImportChapterPreview>,
    /// How many chapters.
    pub chapter_count: i32,
    /// Total length (words; CJK: characters).
    pub word_count: i64,
    /// What the author should know about the split, e.g. that no chapter heading was
    /// found and the whole text would be one chapter.
    pub warnings: Vec<String>,
}

impl From<s::ImportPreview> for ImportPreview {
    fn from(p: s::ImportPreview) -> Self {
        Self {
            format: p.format.into(),
            encoding: p.encoding,
            title: p.title,
            new_novel: p.new_novel,
            volumes: p.volumes,
            chapter_count: p.chapters.len() as i32,
            chapters: p
                .chapters
                .into_iter()
                .map(|c| ImportChapterPreview {
                    seq: c.seq,
                    title: c.title,
                    volume: c.volume,
                    word_count: c.word_count,
                    excerpt: c.excerpt,
                })
                .collect(),
            word_count: p.word_count,
            warnings: p.warnings,
        }
    }
}

/// Result of `importManuscript`.
#[derive(SimpleObject)]
pub struct ImportManuscriptPayload {
    /// The queued IMPORT job: its `progress` counts the chapters created, its `file` is
    /// the manuscript; follow it in `jobEvents`.
    pub job: GenerationJob,
    /// The novel the chapters go to (created for a new one).
    pub novel: Novel,
}

/// How far a job has come.
#[derive(SimpleObject)]
pub struct JobProgress {
    /// Items done (IMPORT: chapters created).
    pub done: i32,
    /// Items in all.
    pub total: i32,
}

/// Reads the uploaded file of `input` into a domain request (refusing one over `max`
/// bytes by its size, before reading it).
pub async fn request(
    ctx: &Context<'_>,
    input: ImportManuscriptInput,
    files: &s::FileService,
) -> async_graphql::Result<s::ImportManuscript> {
    let upload = input.file.value(ctx).map_err(|_| {
        to_gql(Error::invalid(
            "file",
            "send the manuscript as a GraphQL multipart request upload",
        ))
    })?;
    let size = upload.size().unwrap_or(0);
    files
        .check_size("file", usize::try_from(size).unwrap_or(usize::MAX))
        .map_err(to_gql)?;
    let file_name = upload.filename.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        upload.into_read().read_to_end(&mut bytes).map(|_| bytes)
    })
    .await
    .map_err(|e| ErrorCode::Internal.error(format!("reading the upload: {e}")))?
    .map_err(|e| {
        to_gql(Error::invalid(
            "file",
            format!("cannot read the upload: {e}"),
        ))
    })?;
    Ok(s::ImportManuscript {
        file_name,
        bytes,
        novel_id: input
            .novel_id
            .as_ref()
            .map(|id| crate::graphql::ids::decode(id, "novelId"))
            .transpose()?,
        title: input.title,
        format: input.format.map(Into::into),
    })
}
