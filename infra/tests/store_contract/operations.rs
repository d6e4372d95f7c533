//! Connecting, health, pool statistics, migrations.

use crate::support::*;
use znovel_domain::ports::*;
use znovel_infra::testing::TestDatabase;
use znovel_infra::{DbBackend, SqlOptions, SqlStore};

pub async fn store_basics(ctx: &Ctx) {
    let s = &ctx.store;
    assert_eq!(s.backend(), ctx.db.backend);
    s.ping().await.unwrap();
    let stats = s.pool_stats();
    assert_eq!(stats.max, TestDatabase::options().max_connections);
    assert!(
        stats.connections >= 1 && stats.idle <= stats.connections,
        "{stats:?}"
    );
    let clone = s.clone();
    clone.ping().await.unwrap();
    assert_eq!(
        s.pg_role_info().await.unwrap().is_some(),
        s.backend() == DbBackend::Postgres
    );
}

pub async fn migrate_twice_is_a_no_op(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "twice").await;
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap(), n);
    // One row per migration folder (both backends have the same versions).
    let versions = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/postgres"
    ))
    .unwrap()
    .count() as i64;
    assert_eq!(ctx.count("__diesel_schema_migrations").await, versions);
}

/// Two stores (as two processes would) migrate the same fresh database at once.
pub async fn concurrent_migrations(ctx: &Ctx) {
    let fresh = TestDatabase::new(ctx.db.backend).await.unwrap();
    let (s1, s2) = (
        fresh.connect().await.unwrap(),
        fresh.connect().await.unwrap(),
    );
    let t1 = tokio::spawn(async move { s1.migrate().await.map(|()| s1) });
    let t2 = tokio::spawn(async move { s2.migrate().await.map(|()| s2) });
    let s1 = t1.await.unwrap().unwrap();
    let s2 = t2.await.unwrap().unwrap();
    let (t, n) = tenant_with_novel(&s1, "after-race").await;
    assert_eq!(s2.get_novel(t.id, n.id).await.unwrap(), n);
    drop((s1, s2));
}

/// Unsupported URLs are refused with the accepted forms, never echoing the URL.
#[tokio::test]
async fn refuses_unknown_urls() {
    for url in [
        "mysql://root:secret@db/x",
        "sqlite://",
        "sqlite://:memory:",
        "nonsense",
    ] {
        let err = SqlStore::connect(url, SqlOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sqlite://") && err.contains("postgres://"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }
}

/// A SQLite URL creates the file and its parent directories.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_creates_file_and_directories() {
    let db = TestDatabase::sqlite().unwrap();
    let nested = db.url.replace("znovel.db", "a/b/c.db");
    let store = SqlStore::connect(&nested, SqlOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let path = store.sqlite_path().unwrap();
    assert!(path.ends_with("a/b/c.db") && path.exists());
}

/// Migrations also run from a current-thread runtime (the harness runs on a blocking thread).
#[tokio::test(flavor = "current_thread")]
async fn migrate_on_a_current_thread_runtime() {
    let db = TestDatabase::sqlite().unwrap();
    db.store().await.unwrap();
    let pg = TestDatabase::postgres().await.unwrap();
    pg.store().await.unwrap();
}

/// A value the domain cannot represent (written behind the adapter's back) is `Internal`.
pub async fn corrupt_rows_are_internal_errors(ctx: &Ctx) {
    use znovel_domain::StoreError;
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "corrupt").await;
    let e = entity(&n, "E", znovel_domain::model::EntityKind::Character);
    s.insert_entity(&e).await.unwrap();
    let relax = match ctx.db.backend {
        DbBackend::Sqlite => "PRAGMA ignore_check_constraints = ON;".to_owned(),
        DbBackend::Postgres => "ALTER TABLE novels DROP CONSTRAINT novels_status_check;".into(),
    };
    ctx.exec(&format!(
        "{relax} UPDATE novels SET status = 'BOGUS' WHERE id = '{}'; \
         UPDATE entities SET aliases = '{{\"not\": \"a list\"}}' WHERE id = '{}';",
        n.id, e.id
    ))
    .await;
    let bad = s.get_novel(t.id, n.id).await;
    assert!(matches!(bad, Err(StoreError::Internal(_))), "{bad:?}");
    let bad = s.get_entity(t.id, e.id).await;
    assert!(matches!(bad, Err(StoreError::Internal(_))), "{bad:?}");
}
