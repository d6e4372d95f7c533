//! The database as the record, Qdrant as its searchable mirror (the memory index when
//! `QDRANT_URL` is set).
//!
//! Every write goes to the database first (it fails when the database fails), then to
//! Qdrant. A write that does not reach Qdrant is not an error: its novel is marked stale,
//! searches of a stale novel are served by the database, and [`MirroredMemoryIndex::resync`]
//! (run every few seconds by [`MirroredMemoryIndex::resync_loop`]) copies each stale
//! novel from the database to Qdrant again once Qdrant answers, then unmarks it. A search
//! that Qdrant cannot answer is served by the database too (with a warning, counted in
//! [`MirroredMemoryIndex::fallbacks`]). So recall keeps answering while Qdrant is down, and
//! Qdrant catches up by itself when it returns.
//!
//! The stale marks live in the process: a process that stops while Qdrant is down and
//! writes were missed forgets them — `znovel reindex` rebuilds Qdrant from the database
//! after such an outage.

use super::{QdrantMemoryIndex, SqlMemoryIndex};
use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::RwLock;
use uuid::Uuid;
use znovel_domain::ids::{ChapterId, NovelId, TenantId};
use znovel_domain::model::{MemoryKind, MemoryRecord};
use znovel_domain::ports::{IndexError, IndexHit, IndexQuery, MemoryIndex};

/// The database index mirrored to Qdrant.
pub struct MirroredMemoryIndex {
    record: SqlMemoryIndex,
    mirror: Arc<QdrantMemoryIndex>,
    /// Novels whose Qdrant copy missed a write.
    stale: Mutex<HashSet<(TenantId, NovelId)>>,
    /// Writes hold it shared; a resync holds it exclusively while it copies a novel, so no
    /// write lands between its read of the database and its copy.
    copying: RwLock<()>,
    fallbacks: AtomicU64,
}

impl std::fmt::Debug for MirroredMemoryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirroredMemoryIndex")
            .field("record", &self.record)
            .field("mirror", &self.mirror)
            .finish()
    }
}

impl MirroredMemoryIndex {
    /// Mirrors `record` to `mirror`.
    pub fn new(record: SqlMemoryIndex, mirror: Arc<QdrantMemoryIndex>) -> Self {
        Self {
            record,
            mirror,
            stale: Mutex::new(HashSet::new()),
            copying: RwLock::new(()),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// How many searches the database served because Qdrant could not.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// The novels whose Qdrant copy is behind the database now.
    pub fn stale(&self) -> Vec<(TenantId, NovelId)> {
        self.stale_set().iter().copied().collect()
    }

    fn stale_set(&self) -> std::sync::MutexGuard<'_, HashSet<(TenantId, NovelId)>> {
        // A panic while holding this lock leaves a valid set.
        self.stale.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn missed(&self, tenant: TenantId, novel: NovelId, op: &str, e: &IndexError) {
        tracing::warn!(%tenant, %novel, op, error = %e,
            "a memory write did not reach Qdrant; the database serves this novel until it is copied again");
        self.stale_set().insert((tenant, novel));
    }

    /// Copies every stale novel from the database to Qdrant; returns how many are still
    /// stale (Qdrant still down).
    pub async fn resync(&self) -> usize {
        for (tenant, novel) in self.stale() {
            let _exclusive = self.copying.write().await;
            let copied = match self.record.records(tenant, novel).await {
                Ok(records) => self.mirror.rebuild_novel(tenant, novel, records).await,
                Err(e) => Err(e),
            };
            match copied {
                Ok(()) => {
                    self.stale_set().remove(&(tenant, novel));
                    tracing::info!(%tenant, %novel, "memory copied to Qdrant again");
                }
                Err(e) => {
                    tracing::debug!(%tenant, %novel, error = %e, "Qdrant still behind");
                }
            }
        }
        self.stale_set().len()
    }

    /// Runs [`MirroredMemoryIndex::resync`] every `every` until `shutdown` turns true.
    pub async fn resync_loop(
        self: Arc<Self>,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            self.resync().await;
        }
    }
}

#[async_trait]
impl MemoryIndex for MirroredMemoryIndex {
    async fn replace(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
        kinds: &[MemoryKind],
        records: Vec<MemoryRecord>,
    ) -> Result<(), IndexError> {
        let _shared = self.copying.read().await;
        self.record
            .replace(tenant, novel, source, kinds, records.clone())
            .await?;
        if let Err(e) = self
            .mirror
            .replace(tenant, novel, source, kinds, records)
            .await
        {
            self.missed(tenant, novel, "replace", &e);
        }
        Ok(())
    }

    async fn forget(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
    ) -> Result<(), IndexError> {
        let _shared = self.copying.read().await;
        self.record.forget(tenant, novel, source).await?;
        if let Err(e) = self.mirror.forget(tenant, novel, source).await {
            self.missed(tenant, novel, "forget", &e);
        }
        Ok(())
    }

    async fn forget_chapter(
        &self,
        tenant: TenantId,
        novel: NovelId,
        chapter: ChapterId,
    ) -> Result<(), IndexError> {
        let _shared = self.copying.read().await;
        self.record.forget_chapter(tenant, novel, chapter).await?;
        if let Err(e) = self.mirror.forget_chapter(tenant, novel, chapter).await {
            self.missed(tenant, novel, "forget_chapter", &e);
        }
        Ok(())
    }

    async fn search(&self, q: &IndexQuery) -> Result<Vec<IndexHit>, IndexError> {
        if self.stale_set().contains(&(q.tenant, q.novel)) {
            return self.record.search(q).await;
        }
        match self.mirror.search(q).await {
            Err(e @ (IndexError::Unavailable(_) | IndexError::Internal(_))) => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "Qdrant cannot search now; the database answers");
                self.record.search(q).await
            }
            other => other,
        }
    }
}
