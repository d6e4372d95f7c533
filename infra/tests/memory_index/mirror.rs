//! The database mirrored to Qdrant when Qdrant goes away mid-run: recall keeps answering
//! from the database, writes are not refused, and once Qdrant is back the novel is copied
//! again by itself — nothing written while it was down is lost, nothing forgotten comes
//! back.

use crate::support::{Ctx, fake_vector, qdrant_config, record};
use std::sync::Arc;
use std::time::{Duration, Instant};
use znovel_domain::model::{MemoryKind, RecallMode};
use znovel_domain::ports::{IndexQuery, MemoryIndex};
use znovel_infra::DbBackend;
use znovel_infra::memory::{MirroredMemoryIndex, QdrantMemoryIndex, SqlMemoryIndex};
use znovel_infra::testing::TestDatabase;
use znovel_infra::testing::qdrant::TestQdrant;

fn texts(hits: &[znovel_domain::ports::IndexHit]) -> Vec<String> {
    hits.iter().map(|h| h.record.text.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn qdrant_down_mid_run_then_back() {
    let Some(mut server) = TestQdrant::start().unwrap() else {
        return;
    };
    let db = TestDatabase::new(DbBackend::Sqlite).await.unwrap();
    let store = db.store().await.unwrap();
    let sql = SqlMemoryIndex::new(store.clone(), 16 << 20);
    let ctx = Ctx::seeded(store, Arc::new(sql.clone())).await;
    let (t, n) = (ctx.tenant, ctx.novel);
    let qdrant = Arc::new(QdrantMemoryIndex::new(&qdrant_config(&server.url)).unwrap());
    let mirror = MirroredMemoryIndex::new(sql, qdrant.clone());
    let write = |text: &'static str| {
        let source = uuid::Uuid::now_v7();
        let mut r = record(t, n, MemoryKind::Passage, source, 0, Some(1), text);
        r.vector = Some(fake_vector(text));
        (source, r)
    };
    let query = |text: &str, mode| IndexQuery {
        mode,
        vector: Some(fake_vector(text)),
        ..ctx.query(text)
    };

    let (lantern, r) = write("the lantern of Orrin");
    mirror
        .replace(t, n, lantern, &[MemoryKind::Passage], vec![r])
        .await
        .unwrap();
    let in_qdrant = qdrant
        .search(&query("Orrin", RecallMode::Keyword))
        .await
        .unwrap();
    assert_eq!(texts(&in_qdrant), vec!["the lantern of Orrin"]);

    server.kill();
    // Recall still answers, from the database.
    for mode in [RecallMode::Keyword, RecallMode::Dense, RecallMode::Hybrid] {
        let hits = mirror.search(&query("Orrin", mode)).await.unwrap();
        assert_eq!(texts(&hits), vec!["the lantern of Orrin"], "{mode}");
    }
    assert!(mirror.fallbacks() >= 3, "{}", mirror.fallbacks());
    let direct = qdrant.search(&query("Orrin", RecallMode::Keyword)).await;
    assert!(
        matches!(
            direct,
            Err(znovel_domain::ports::IndexError::Unavailable(_))
        ),
        "{direct:?}"
    );
    // Writes are taken (the database is the record) and the novel is marked behind.
    let (bell, r) = write("the harbour bell rang twice");
    mirror
        .replace(t, n, bell, &[MemoryKind::Passage], vec![r])
        .await
        .unwrap();
    mirror.forget(t, n, lantern).await.unwrap();
    assert_eq!(mirror.stale(), vec![(t, n)]);
    assert_eq!(
        texts(
            &mirror
                .search(&query("bell", RecallMode::Keyword))
                .await
                .unwrap()
        ),
        vec!["the harbour bell rang twice"]
    );
    assert!(
        mirror
            .search(&query("Orrin", RecallMode::Keyword))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(mirror.resync().await, 1, "Qdrant is still down");

    // Qdrant comes back: the next resync copies the novel again.
    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while mirror.resync().await > 0 {
        assert!(
            Instant::now() < deadline,
            "the novel was never copied again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let in_qdrant = qdrant
        .search(&query("bell", RecallMode::Keyword))
        .await
        .unwrap();
    assert_eq!(texts(&in_qdrant), vec!["the harbour bell rang twice"]);
    assert!(
        qdrant
            .search(&query("Orrin", RecallMode::Keyword))
            .await
            .unwrap()
            .is_empty(),
        "what was forgotten while Qdrant was down stays forgotten"
    );
    // New writes reach Qdrant again and searches are Qdrant's again.
    let fallbacks = mirror.fallbacks();
    let (gull, r) = write("a gull on the mast");
    mirror
        .replace(t, n, gull, &[MemoryKind::Passage], vec![r])
        .await
        .unwrap();
    assert!(mirror.stale().is_empty());
    let in_qdrant = qdrant
        .search(&query("gull", RecallMode::Hybrid))
        .await
        .unwrap();
    assert_eq!(texts(&in_qdrant)[0], "a gull on the mast");
    assert_eq!(
        texts(
            &mirror
                .search(&query("gull", RecallMode::Keyword))
                .await
                .unwrap()
        ),
        vec!["a gull on the mast"]
    );
    assert_eq!(mirror.fallbacks(), fallbacks);
}
