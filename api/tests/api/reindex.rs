//! `znovel reindex` against a real Qdrant server: the binary copies the database's memory
//! records (the record) into Qdrant — every novel, or one — and fails clearly without
//! `QDRANT_URL` or with an unknown novel.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use znovel_domain::ids::{NovelId, TenantId};
use znovel_domain::model::{MemoryKind, MemoryRecord, Novel, NovelStatus, RecallMode, Tenant};
use znovel_domain::ports::{IndexQuery, MemoryIndex, NovelRepository, TenantRepository};
use znovel_domain::services::now;
use znovel_infra::memory::{QdrantConfig, QdrantMemoryIndex, SqlMemoryIndex};
use znovel_infra::testing::qdrant::TestQdrant;
use znovel_infra::{SqlOptions, SqlStore};

const BIN: &str = env!("CARGO_BIN_EXE_znovel");
const DIMS: usize = 8;

fn znovel(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env_clear().args(args);
    if let Ok(p) = std::env::var("PATH") {
        c.env("PATH", p);
    }
    c.envs(env.iter().copied()).output().unwrap()
}

async fn novel_with_records(store: &SqlStore, texts: &[&str]) -> (TenantId, NovelId) {
    let t = now();
    let tenant = Tenant {
        id: TenantId::new(),
        name: "Reindex".into(),
        slug: format!("reindex-{}", uuid::Uuid::new_v4().simple()),
        status: znovel_domain::model::TenantStatus::Active,
        quota: Default::default(),
        settings: serde_json::json!({}),
        created_at: t,
        updated_at: t,
    };
    store.insert_tenant(&tenant).await.unwrap();
    let novel = Novel {
        id: NovelId::new(),
        tenant_id: tenant.id,
        title: "Reindexed".into(),
        description: String::new(),
        genre: String::new(),
        language: "en".into(),
        target_word_count: None,
        style_guide: String::new(),
        world_settings: serde_json::json!({}),
        time_system: String::new(),
        status: NovelStatus::Draft,
        word_count: 0,
        created_at: t,
        updated_at: t,
    };
    store.insert_novel(&novel).await.unwrap();
    let index = SqlMemoryIndex::new(store.clone(), 1 << 20);
    let source = uuid::Uuid::now_v7();
    let records = texts
        .iter()
        .enumerate()
        .map(|(i, text)| MemoryRecord {
            id: MemoryRecord::stable_id(source, MemoryKind::Passage, i as i32),
            tenant_id: tenant.id,
            novel_id: novel.id,
            kind: MemoryKind::Passage,
            source_id: source,
            ordinal: i as i32,
            chapter_id: None,
            chapter_seq: Some(1),
            chapter_version: Some(1),
            text: (*text).to_owned(),
            start_offset: None,
            end_offset: None,
            vector: Some(vec![1.0 / (DIMS as f32).sqrt(); DIMS]),
            model: Some("m".into()),
        })
        .collect();
    index
        .replace(tenant.id, novel.id, source, &[MemoryKind::Passage], records)
        .await
        .unwrap();
    (tenant.id, novel.id)
}

fn query(tenant: TenantId, novel: NovelId, text: &str) -> IndexQuery {
    IndexQuery {
        tenant,
        novel,
        before_seq: None,
        kinds: Vec::new(),
        text: text.into(),
        vector: None,
        model: None,
        mode: RecallMode::Keyword,
        limit: 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_copies_the_database_into_qdrant() {
    let Some(server) = TestQdrant::start().unwrap() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("znovel-reindex-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let out = znovel(&dir, &[], &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("sqlite://{}", dir.join("data/znovel.db").display());
    let store = SqlStore::connect(&url, SqlOptions::default())
        .await
        .unwrap();
    let (t1, n1) =
        novel_with_records(&store, &["the copper kettle", "a window onto the bay"]).await;
    let (t2, n2) = novel_with_records(&store, &["the kettle of another tenant"]).await;

    let collection = format!("reindex_{}", uuid::Uuid::new_v4().simple());
    let env = [
        ("QDRANT_URL", server.url.as_str()),
        ("QDRANT_COLLECTION", collection.as_str()),
    ];
    let qdrant = Arc::new(
        QdrantMemoryIndex::new(&QdrantConfig {
            collection: collection.clone(),
            ..QdrantConfig::new(server.url.clone(), DIMS)
        })
        .unwrap(),
    );

    // One novel.
    let n1s = n1.to_string();
    let out = znovel(&dir, &env, &["reindex", "--novel", &n1s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reindexed 1 novels (2 records)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let hits = qdrant.search(&query(t1, n1, "kettle")).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].record.text, "the copper kettle");
    assert!(
        qdrant
            .search(&query(t2, n2, "kettle"))
            .await
            .unwrap()
            .is_empty()
    );

    // Every novel; twice leaves one copy of each record.
    for _ in 0..2 {
        let out = znovel(&dir, &env, &["reindex"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("reindexed 2 novels (3 records)"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let theirs = qdrant.search(&query(t2, n2, "kettle")).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].record.text, "the kettle of another tenant");
    assert_eq!(
        qdrant
            .search(&query(t1, n1, "kettle bay"))
            .await
            .unwrap()
            .len(),
        2
    );

    // Unknown novel, no Qdrant: clear failures.
    let unknown = uuid::Uuid::new_v4().to_string();
    let out = znovel(&dir, &env, &["reindex", "--novel", &unknown]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no novel {unknown}")));
    let out = znovel(&dir, &[], &["reindex"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("QDRANT_URL"));
    std::fs::remove_dir_all(&dir).ok();
}
