//! `znovel reindex [--novel ID]`: rebuilds the Qdrant memory index from the database,
//! which stays the record — every novel of every tenant (archived ones included), or one
//! novel. Each novel's points are deleted and written again from its records, so
//! running it twice, or after an outage in which writes missed Qdrant, leaves Qdrant
//! equal to the database.

use crate::config::Settings;
use crate::memory::{DEFAULT_DIMENSIONS, VECTOR_CACHE_BYTES, qdrant};
use anyhow::Context;
use znovel_domain::StoreError;
use znovel_domain::ids::{NovelId, TenantId};
use znovel_domain::model::NovelStatus;
use znovel_domain::page::PageRequest;
use znovel_domain::ports::{NovelFilter, NovelRepository, TenantRepository};
use znovel_infra::SqlStore;
use znovel_infra::memory::SqlMemoryIndex;

/// What a reindex copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// Novels rebuilt.
    pub novels: usize,
    /// Records written.
    pub records: usize,
}

/// Every (tenant, novel) of the database, archived novels included.
async fn all_novels(store: &SqlStore) -> anyhow::Result<Vec<(TenantId, NovelId)>> {
    let mut out = Vec::new();
    for tenant in store.tenant_ids().await? {
        for status in [None, Some(NovelStatus::Archived)] {
            let mut after = None;
            loop {
                let page = PageRequest::new(Some(100), after)?;
                let novels = store
                    .list_novels(tenant, &NovelFilter { status }, page)
                    .await?;
                after = novels.items.last().map(|n| n.id.as_uuid());
                out.extend(novels.items.iter().map(|n| (tenant, n.id)));
                if !novels.has_next_page {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The tenant of `novel`.
async fn tenant_of(store: &SqlStore, novel: NovelId) -> anyhow::Result<TenantId> {
    for tenant in store.tenant_ids().await? {
        match store.get_novel(tenant, novel).await {
            Ok(_) => return Ok(tenant),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("no novel {novel}")
}

/// Rebuilds Qdrant (`QDRANT_URL`) from `store`: one novel, or all of them.
pub async fn reindex(
    settings: &Settings,
    store: &SqlStore,
    novel: Option<NovelId>,
) -> anyhow::Result<Reindexed> {
    if settings.qdrant_url.is_none() {
        anyhow::bail!("QDRANT_URL is not set: there is no Qdrant index to rebuild");
    }
    let novels = match novel {
        Some(n) => vec![(tenant_of(store, n).await?, n)],
        None => all_novels(store).await?,
    };
    let sql = SqlMemoryIndex::new(store.clone(), VECTOR_CACHE_BYTES);
    let mut index = None;
    let mut done = Reindexed::default();
    for (tenant, novel) in novels {
        let records = sql.records(tenant, novel).await?;
        // The collection's dimensions, if it must be created: the records' vectors'.
        if index.is_none() {
            let dims = records
                .iter()
                .find_map(|r| r.vector.as_ref().map(Vec::len))
                .unwrap_or(DEFAULT_DIMENSIONS);
            index = qdrant(settings, dims)?;
        }
        let Some(q) = &index else {
            break;
        };
        done.records += records.len();
        q.rebuild_novel(tenant, novel, records)
            .await
            .with_context(|| format!("rebuilding novel {novel} in Qdrant"))?;
        done.novels += 1;
        tracing::info!(%tenant, %novel, "novel reindexed");
    }
    Ok(done)
}
