//! What the story's memory holds for retrieval: records (chapter passages, summaries and
//! the story bible rendered as text), each with its story time — the seq of the chapter
//! that established it — and what `recall` answers.

use super::{Entity, EntityState, Event, Foreshadowing, Relation, str_enum};
use crate::ids::{ChapterId, EntityId, ForeshadowingId, NovelId, TenantId};
use uuid::Uuid;

str_enum! {
    /// What a remembered record is.
    MemoryKind {
        /// A passage of a chapter's text (with its offsets in the chapter).
        Passage = "PASSAGE",
        /// A chapter's summary.
        Summary = "SUMMARY",
        /// A story-bible entity: its names, description and attributes.
        Entity = "ENTITY",
        /// A change of an entity's state.
        EntityState = "ENTITY_STATE",
        /// A timeline event.
        Event = "EVENT",
        /// A relation between two entities.
        Relation = "RELATION",
        /// A foreshadowing thread.
        Foreshadowing = "FORESHADOWING",
    }
}

str_enum! {
    /// How `recall` searches.
    RecallMode {
        /// Dense vectors and keywords, fused by reciprocal rank.
        Hybrid = "HYBRID",
        /// Dense vectors only (meaning).
        Dense = "DENSE",
        /// Keywords only (names, exact words; BM25).
        Keyword = "KEYWORD",
    }
}

/// One remembered piece of the story, as an index stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRecord {
    /// Identity: stable for a (source, kind, ordinal), so writing a record again
    /// replaces it.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel.
    pub novel_id: NovelId,
    /// What it is.
    pub kind: MemoryKind,
    /// The object it was made from: the chapter (passages, summary), the entity, the state
    /// change, the event, the relation or the thread.
    pub source_id: Uuid,
    /// Position among the records of its source and kind (passages: 0, 1, ...).
    pub ordinal: i32,
    /// The chapter that established it, if any.
    pub chapter_id: Option<ChapterId>,
    /// Story time: the seq of that chapter. `None`: timeless (the author's bible, known
    /// from the start).
    pub chapter_seq: Option<i32>,
    /// For passages and summaries: the chapter version they were made from.
    pub chapter_version: Option<i32>,
    /// The text that is searched and quoted.
    pub text: String,
    /// For passages: where the text starts in the chapter's content (Unicode code
    /// points).
    pub start_offset: Option<i32>,
    /// For passages: where it ends (exclusive).
    pub end_offset: Option<i32>,
    /// The dense vector, when an embedder made one.
    pub vector: Option<Vec<f32>>,
    /// The model that made `vector`.
    pub model: Option<String>,
}

impl MemoryRecord {
    /// The record's identity for a (source, kind, ordinal): a name-based UUID (SHA-256,
    /// version 8), so the same record written twice has the same id.
    pub fn stable_id(source: Uuid, kind: MemoryKind, ordinal: i32) -> Uuid {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{source}:{}:{ordinal}", kind.as_str()));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8 (custom)
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        Uuid::from_bytes(bytes)
    }
}

/// One answer of `recall`: a remembered text and why it was found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecallHit {
    /// The record.
    pub record_id: Uuid,
    /// What it is.
    pub kind: MemoryKind,
    /// The text.
    pub text: String,
    /// Relevance: higher is better. HYBRID: the reciprocal-rank fusion score; DENSE:
    /// cosine similarity; KEYWORD: the keyword score.
    pub score: f64,
    /// The chapter that established it, if any.
    pub chapter_id: Option<ChapterId>,
    /// That chapter's seq (story time).
    pub chapter_seq: Option<i32>,
    /// For passages: start offset in the chapter (Unicode code points).
    pub start_offset: Option<i32>,
    /// For passages: end offset (exclusive).
    pub end_offset: Option<i32>,
}

impl RecallHit {
    /// The hit for an index record.
    pub fn from_record(r: &MemoryRecord, score: f64) -> Self {
        Self {
            record_id: r.id,
            kind: r.kind,
            text: r.text.clone(),
            score,
            chapter_id: r.chapter_id,
            chapter_seq: r.chapter_seq,
            start_offset: r.start_offset,
            end_offset: r.end_offset,
        }
    }
}

/// Where a novel's memory stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryProgress {
    /// Chapters with content whose current version is searchable.
    pub indexed_chapters: i64,
    /// Chapters with content whose current version is not searchable yet.
    pub pending_chapters: i64,
    /// Chapters with content whose current version could not be indexed.
    pub failed_chapters: i64,
    /// Chapters whose current version's facts were extracted by the language model.
    pub extracted_chapters: i64,
}

/// A chapter's memory state: which of its versions are remembered.
#[derive(Debug, Clone, PartialEq)]
pub struct ChapterMemory {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The chapter.
    pub chapter_id: ChapterId,
    /// The version whose passages are searchable, if any.
    pub indexed_version: Option<i32>,
    /// The version whose facts were extracted, if any.
    pub extracted_version: Option<i32>,
    /// The version whose memory job failed, if any.
    pub failed_version: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What one version of a chapter established, as extraction found it, ready to store in
/// one transaction (see `MemoryRepository::replace_extracted`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtractedMemory {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The chapter.
    pub chapter_id: ChapterId,
    /// The version it was extracted from: nothing is written if the chapter moved on.
    pub chapter_version: i32,
    /// The chapter's summary (not written over the author's).
    pub summary: Option<String>,
    /// Entities the chapter introduced that the bible did not have.
    pub new_entities: Vec<Entity>,
    /// State changes.
    pub states: Vec<EntityState>,
    /// Events.
    pub events: Vec<Event>,
    /// Relations (one that exists already is kept as it is).
    pub relations: Vec<Relation>,
    /// Threads planted.
    pub planted: Vec<Foreshadowing>,
    /// Open threads the chapter pays off.
    pub resolved: Vec<ForeshadowingId>,
}

/// Which entities a version of a chapter names (by name or alias): what the entities'
/// first/last chapter and appearance counts are computed from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChapterAppearances {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The chapter.
    pub chapter_id: ChapterId,
    /// The entities it names.
    pub entities: Vec<EntityId>,
}
