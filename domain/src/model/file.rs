//! Stored files: a manuscript uploaded for import or a book an export produced. The
//! bytes live with the tenant's other data; this is what is known about them.

use super::str_enum;
use crate::ids::{FileId, JobId, NovelId, TenantId, UserId};
use chrono::{DateTime, Utc};

/// Default largest stored file (50 MB).
pub const DEFAULT_MAX_FILE_BYTES: i64 = 50 * 1024 * 1024;

/// A stored file's metadata (its bytes are read separately).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    /// Identity.
    pub id: FileId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel it belongs to.
    pub novel_id: NovelId,
    /// The job that produced it (EXPORT) or reads it (IMPORT).
    pub job_id: Option<JobId>,
    /// File name, e.g. `My Novel.epub`.
    pub name: String,
    /// Media type, e.g. `application/epub+zip`.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Who stored it (or asked for the job that did).
    pub created_by: Option<UserId>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

str_enum! {
    /// The format of an exported book.
    ExportFormat {
        /// EPUB 3 (navigation document, metadata, cover page).
        Epub = "EPUB",
        /// Markdown: `#` title, `##` per chapter.
        Markdown = "MARKDOWN",
        /// Plain UTF-8 text.
        Txt = "TXT",
    }
}

impl ExportFormat {
    /// The file name extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Epub => "epub",
            Self::Markdown => "md",
            Self::Txt => "txt",
        }
    }

    /// The media type of the produced file.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Epub => "application/epub+zip",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Txt => "text/plain; charset=utf-8",
        }
    }
}

str_enum! {
    /// The format of an uploaded manuscript.
    #[derive(Default)]
    ManuscriptFormat {
        /// Plain text (UTF-8, UTF-16 with a byte order mark, or GB18030/GBK), split at
        /// chapter headings ("Chapter 12", "第十二章", volumes "第一卷", …).
        #[default]
        Txt = "TXT",
        /// Markdown, split at `#`/`##` headings.
        Markdown = "MARKDOWN",
        /// EPUB (2 or 3): chapters in spine order, titled from the table of contents.
        Epub = "EPUB",
        /// Word (DOCX): split at its heading-styled paragraphs, else at heading lines as
        /// TXT is.
        Docx = "DOCX",
    }
}

impl ManuscriptFormat {
    /// The media type a manuscript of this format is stored with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Epub => "application/epub+zip",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Markdown => "text/markdown",
            Self::Txt => "text/plain",
        }
    }
}

/// What an IMPORT job imports: the manuscript is the job's file; the worker parses it
/// again (parsing is deterministic) and creates its chapters in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportSpec {
    /// The format the manuscript is read as.
    pub format: ManuscriptFormat,
    /// How many chapters it holds (the job's progress total).
    pub chapters: i32,
}

/// What an EXPORT job exports: a format and an optional range of chapter seqs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportSpec {
    /// The format.
    pub format: ExportFormat,
    /// First chapter seq (inclusive); from the first chapter when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<i32>,
    /// Last chapter seq (inclusive); to the last chapter when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<i32>,
}
