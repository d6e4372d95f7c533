//! The in-memory store's memory repository: chapters' memory state and the bible as of a
//! chapter (what the resolvers over memory read).

use super::fake::{FakeStore, R};
use async_graphql::async_trait::async_trait;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;

#[async_trait]
impl MemoryRepository for FakeStore {
    async fn get_chapter_memory(&self, t: TenantId, c: ChapterId) -> R<Option<ChapterMemory>> {
        Ok(self.with(|s| {
            s.memory
                .iter()
                .find(|m| m.tenant_id == t && m.chapter_id == c)
                .cloned()
        }))
    }
    async fn mark_chapter_memory(
        &self,
        t: TenantId,
        c: ChapterId,
        v: i32,
        mark: MemoryMark,
    ) -> R<()> {
        self.with(|s| {
            if !s.chapters.iter().any(|x| x.tenant_id == t && x.id == c) {
                return Err(StoreError::NotFound);
            }
            let i = match s.memory.iter().position(|m| m.chapter_id == c) {
                Some(i) => i,
                None => {
                    s.memory.push(ChapterMemory {
                        tenant_id: t,
                        chapter_id: c,
                        indexed_version: None,
                        extracted_version: None,
                        failed_version: None,
                        error: None,
                    });
                    s.memory.len() - 1
                }
            };
            let m = &mut s.memory[i];
            let bump = |old: Option<i32>| Some(old.map_or(v, |o| o.max(v)));
            match mark {
                MemoryMark::Indexed => m.indexed_version = bump(m.indexed_version),
                MemoryMark::Extracted => m.extracted_version = bump(m.extracted_version),
                MemoryMark::Failed(why) => {
                    m.failed_version = bump(m.failed_version);
                    m.error = Some(why);
                }
            }
            Ok(())
        })
    }
    async fn memory_progress(&self, t: TenantId, n: NovelId) -> R<MemoryProgress> {
        Ok(self.with(|s| {
            let mut p = MemoryProgress::default();
            for c in s
                .chapters
                .iter()
                .filter(|c| c.tenant_id == t && c.novel_id == n && c.version > 0)
            {
                let m = s.memory.iter().find(|m| m.chapter_id == c.id);
                if m.and_then(|m| m.indexed_version) == Some(c.version) {
                    p.indexed_chapters += 1;
                } else if m.and_then(|m| m.failed_version) == Some(c.version) {
                    p.failed_chapters += 1;
                } else {
                    p.pending_chapters += 1;
                }
                if m.and_then(|m| m.extracted_version) == Some(c.version) {
                    p.extracted_chapters += 1;
                }
            }
            p
        }))
    }
    async fn replace_extracted(&self, _m: &ExtractedMemory) -> R<Option<Vec<uuid::Uuid>>> {
        Err(StoreError::Internal(
            "the in-memory store keeps no extracted memory".into(),
        ))
    }
    async fn replace_appearances(&self, _a: &ChapterAppearances) -> R<()> {
        Ok(())
    }
    async fn entity_states_as_of(
        &self,
        t: TenantId,
        ids: &[EntityId],
        seq: i32,
    ) -> R<Vec<EntityState>> {
        Ok(self.with(|s| {
            let seq_of = |c: Option<ChapterId>| {
                c.and_then(|c| s.chapters.iter().find(|x| x.id == c).map(|x| x.seq))
                    .unwrap_or(0)
            };
            ids.iter()
                .filter_map(|id| {
                    s.states
                        .iter()
                        .filter(|st| st.tenant_id == t && st.entity_id == *id)
                        .filter(|st| seq_of(st.chapter_id) <= seq)
                        .max_by_key(|st| (seq_of(st.chapter_id), st.id))
                        .cloned()
                })
                .collect()
        }))
    }
    async fn chapter_heads(&self, t: TenantId, n: NovelId) -> R<Vec<(ChapterId, i32, i32)>> {
        Ok(self.with(|s| {
            s.chapters
                .iter()
                .filter(|c| c.tenant_id == t && c.novel_id == n)
                .map(|c| (c.id, c.seq, c.version))
                .collect()
        }))
    }
    async fn unremembered_chapters(
        &self,
        _t: TenantId,
        _limit: i64,
    ) -> R<Vec<(ChapterId, i32, i32)>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl ValidationRepository for FakeStore {
    async fn save_validation(&self, v: &ChapterValidation) -> R<()> {
        self.with(|s| {
            if !s
                .chapters
                .iter()
                .any(|x| x.tenant_id == v.tenant_id && x.id == v.chapter_id)
            {
                return Err(StoreError::NotFound);
            }
            s.validations.retain(|o| {
                !(o.chapter_id == v.chapter_id && o.chapter_version == v.chapter_version)
            });
            s.validations.push(v.clone());
            Ok(())
        })
    }
    async fn get_validation(
        &self,
        t: TenantId,
        c: ChapterId,
        version: i32,
    ) -> R<Option<ChapterValidation>> {
        Ok(self.with(|s| {
            s.validations
                .iter()
                .find(|v| v.tenant_id == t && v.chapter_id == c && v.chapter_version == version)
                .cloned()
        }))
    }
}

// The resolver tests store no files: the in-memory store has none.
#[async_trait]
impl FileRepository for FakeStore {
    async fn insert_file(&self, _f: &StoredFile, _bytes: &[u8]) -> R<()> {
        Err(StoreError::Internal(
            "the in-memory store keeps no files".into(),
        ))
    }
    async fn get_file(&self, _t: TenantId, _id: FileId) -> R<StoredFile> {
        Err(StoreError::NotFound)
    }
    async fn get_file_content(&self, _t: TenantId, _id: FileId) -> R<Vec<u8>> {
        Err(StoreError::NotFound)
    }
    async fn find_file_by_job(&self, _t: TenantId, _job: JobId) -> R<Option<StoredFile>> {
        Ok(None)
    }
    async fn list_files(
        &self,
        _t: TenantId,
        _novel: NovelId,
        page: znovel_domain::page::PageRequest,
    ) -> R<znovel_domain::page::Page<StoredFile>> {
        Ok(znovel_domain::page::Page::from_rows(Vec::new(), &page))
    }
    async fn delete_file(&self, _t: TenantId, _id: FileId) -> R<()> {
        Err(StoreError::NotFound)
    }
    async fn file_bytes_used(&self, _t: TenantId) -> R<i64> {
        Ok(0)
    }
}
