//! PostgreSQL only: row-level security really isolates tenants, and the server's
//! connections act as a role it applies to.

use crate::support::*;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use znovel_domain::ids::{ChapterId, TenantId};
use znovel_domain::model::EntityKind;
use znovel_domain::ports::*;
use znovel_infra::DbBackend;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, table: &str) -> i64 {
    let q = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"));
    q.get_result::<N>(conn).await.unwrap().n
}

/// Counts rows of `tables` in one transaction with `app.tenant_id` set to `tenant`.
async fn counts_as(conn: &mut AsyncPgConnection, tenant: Option<TenantId>) -> Vec<i64> {
    conn.batch_execute("BEGIN").await.unwrap();
    if let Some(t) = tenant {
        diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
            .bind::<Text, _>(t.to_string())
            .execute(conn)
            .await
            .unwrap();
    }
    let mut out = Vec::new();
    for table in [
        "novels",
        "chapters",
        "entities",
        "chapter_revisions",
        "users",
    ] {
        out.push(count(conn, table).await);
    }
    conn.batch_execute("COMMIT").await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn row_level_security_hides_other_tenants() {
    let ctx = Ctx::new(DbBackend::Postgres).await;
    let s = &ctx.store;
    let (a, n) = tenant_with_novel(s, "rls-a").await;
    let (b, _) = tenant_with_novel(s, "rls-b").await;
    let c = chapter(&n, 1, 3);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    s.insert_entity(&entity(&n, "E", EntityKind::Character))
        .await
        .unwrap();
    s.insert_user(&user(a.id, "a@x.io")).await.unwrap();
    assert_eq!(ctx.count("novels").await, 2, "the owner sees every row");

    let mut conn = AsyncPgConnection::establish(&ctx.db.url).await.unwrap();
    conn.batch_execute("SET ROLE znovel_app").await.unwrap();
    assert_eq!(
        counts_as(&mut conn, None).await,
        vec![0, 0, 0, 0, 0],
        "no tenant: no rows"
    );
    assert_eq!(counts_as(&mut conn, Some(a.id)).await, vec![1, 1, 1, 1, 1]);
    assert_eq!(counts_as(&mut conn, Some(b.id)).await, vec![1, 0, 0, 0, 0]);
    assert_eq!(
        counts_as(&mut conn, Some(TenantId::new())).await,
        vec![0, 0, 0, 0, 0]
    );
    // The setting was transaction-local: it is gone afterwards.
    assert_eq!(count(&mut conn, "novels").await, 0);

    // WITH CHECK: a row of another tenant cannot be written either.
    conn.batch_execute("BEGIN").await.unwrap();
    diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
        .bind::<Text, _>(b.id.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    let sneaky = conn
        .batch_execute(&format!(
            "UPDATE novels SET tenant_id = '{}' WHERE id = '{}'",
            a.id,
            tenant_with_novel_id(&ctx, b.id).await
        ))
        .await;
    assert!(
        sneaky.is_err(),
        "moving a row to another tenant must be refused"
    );
    conn.batch_execute("ROLLBACK").await.unwrap();
    let deleted = conn
        .batch_execute(&format!("DELETE FROM novels WHERE id = '{}'", n.id))
        .await;
    assert!(deleted.is_ok());
    assert_eq!(
        s.get_novel(a.id, n.id).await.unwrap().id,
        n.id,
        "invisible rows are not deleted"
    );
}

async fn tenant_with_novel_id(ctx: &Ctx, tenant: TenantId) -> uuid::Uuid {
    let page = ctx
        .store
        .list_novels(tenant, &NovelFilter::default(), page(1, None))
        .await
        .unwrap();
    page.items[0].id.as_uuid()
}

#[tokio::test(flavor = "multi_thread")]
async fn pooled_connections_act_as_the_restricted_app_role() {
    let ctx = Ctx::new(DbBackend::Postgres).await;
    let info = ctx.store.pg_role_info().await.unwrap().unwrap();
    assert_eq!(info.current_user, "znovel_app");
    assert!(!info.superuser, "{info:?}");
    assert!(!info.bypass_rls, "{info:?}");
    assert!(!info.owns_tables, "{info:?}");
    // Every tenant-owned table has FORCE row-level security; tenants and the global
    // trusted_documents (registered operations, not tenant data) have none.
    let forced = ctx
        .count(
            "pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace \
             WHERE ns.nspname = current_schema() AND c.relkind = 'r' \
             AND c.relrowsecurity AND c.relforcerowsecurity",
        )
        .await;
    assert_eq!(forced, 20);
    let tables = ctx
        .count(
            "pg_tables WHERE schemaname = current_schema() \
             AND tablename <> '__diesel_schema_migrations'",
        )
        .await;
    assert_eq!(tables, 22);
}

/// A configured role other than `znovel_app` is created and granted by `migrate`; two
/// databases migrating at once race to create it (roles are cluster-wide) and both win.
#[tokio::test(flavor = "multi_thread")]
async fn custom_app_role_is_created_once_under_concurrent_migrations() {
    use znovel_infra::testing::{TestDatabase, pg_admin_url};
    use znovel_infra::{SqlOptions, SqlStore};
    let role = format!("znovel_app_test_{}", uuid::Uuid::new_v4().simple());
    let opts = SqlOptions {
        pg_app_role: role.clone(),
        ..TestDatabase::options()
    };
    let (db1, db2) = (
        TestDatabase::postgres().await.unwrap(),
        TestDatabase::postgres().await.unwrap(),
    );
    let (s1, s2) = (
        SqlStore::connect(&db1.url, opts.clone()).await.unwrap(),
        SqlStore::connect(&db2.url, opts).await.unwrap(),
    );
    let t1 = tokio::spawn(async move { s1.migrate().await.map(|()| s1) });
    let t2 = tokio::spawn(async move { s2.migrate().await.map(|()| s2) });
    let (s1, s2) = (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap());
    for s in [&s1, &s2] {
        let info = s.pg_role_info().await.unwrap().unwrap();
        assert_eq!(info.current_user, role);
        assert!(
            !info.superuser && !info.bypass_rls && !info.owns_tables,
            "{info:?}"
        );
        let (t, n) = tenant_with_novel(s, "custom-role").await;
        assert_eq!(s.get_novel(t.id, n.id).await.unwrap(), n);
        assert_not_found(s.get_novel(TenantId::new(), n.id).await);
    }
    drop((s1, s2, db1, db2));
    let mut admin = AsyncPgConnection::establish(&pg_admin_url()).await.unwrap();
    admin
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .await
        .unwrap();
}

/// When the database goes away, operations fail with `Unavailable` (not `Internal`) within
/// the connect timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_database_is_unavailable() {
    use std::time::Duration;
    use znovel_domain::StoreError;
    use znovel_infra::testing::{TestDatabase, pg_admin_url};
    use znovel_infra::{SqlOptions, SqlStore};
    let db = TestDatabase::postgres().await.unwrap();
    let opts = SqlOptions {
        connect_timeout: Duration::from_millis(500),
        ..TestDatabase::options()
    };
    let store = SqlStore::connect(&db.url, opts).await.unwrap();
    store.migrate().await.unwrap();
    let (t, _) = tenant_with_novel(&store, "lost").await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let mut admin = AsyncPgConnection::establish(&pg_admin_url()).await.unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = store.get_tenant(t.id).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Pooled connections the server has closed (a restart, an administrator, a failover) are
/// left behind at checkout: the next operations succeed on fresh connections instead of
/// failing once per dead connection. The checkout costs no round trip, so this relies on
/// the driver having seen the connection close.
#[tokio::test(flavor = "multi_thread")]
async fn connections_the_server_closed_are_replaced_at_checkout() {
    use std::time::Duration;
    use znovel_infra::testing::pg_admin_url;
    let ctx = Ctx::new(DbBackend::Postgres).await;
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "closed").await;
    // Several connections in the pool, all idle: reads held up by a lock until the pool
    // has opened a connection for each (reads that finish at once would share one).
    let mut locker = AsyncPgConnection::establish(&ctx.db.url).await.unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE novels IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let reads = futures_util::future::join_all((0..6).map(|_| s.get_novel(t.id, n.id)));
    let release = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.pool_stats().connections < 4 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        locker.batch_execute("COMMIT").await.unwrap();
    };
    let (results, ()) = tokio::join!(reads, release);
    for r in results {
        r.unwrap();
    }
    let before = s.pool_stats().connections;
    assert!(before >= 4, "{before} pooled connections");
    drop(locker);
    let name = ctx.db.url.rsplit('/').next().unwrap().to_owned();
    let mut admin = AsyncPgConnection::establish(&pg_admin_url()).await.unwrap();
    let killed: Vec<N> = diesel::sql_query(
        "SELECT COUNT(pg_terminate_backend(pid))::bigint AS n FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<Text, _>(&name)
    .load(&mut admin)
    .await
    .unwrap();
    assert!(
        killed[0].n >= i64::from(before),
        "{} terminated",
        killed[0].n
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..(before + 2) {
        assert_eq!(s.get_novel(t.id, n.id).await.unwrap().id, n.id);
    }
    let c = chapter(&n, 1, 3);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap().id, c.id);
    assert_not_found(s.get_chapter(TenantId::new(), c.id).await);
}

/// A point read sends `BEGIN`, its statement and `COMMIT` together. On a connection that
/// has not prepared the statement yet, the statement runs after the `COMMIT`: the read
/// must then be made again, not answered "not found". Either way no transaction is left
/// open on the server, and another tenant's row stays invisible.
#[tokio::test(flavor = "multi_thread")]
async fn point_reads_in_one_round_trip_find_their_row_cold_and_warm() {
    use znovel_infra::testing::pg_admin_url;
    let ctx = Ctx::new(DbBackend::Postgres).await;
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "onetrip").await;
    let (other, _) = tenant_with_novel(s, "onetrip-other").await;
    let c = chapter(&n, 1, 3);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    for round in 0..4 {
        // Concurrent reads: several pooled connections, each cold on the first round.
        let reads = futures_util::future::join_all((0..4).map(|_| s.get_chapter(t.id, c.id)));
        for r in reads.await {
            assert_eq!(r.unwrap().content, c.content, "round {round}");
        }
        assert_eq!(s.get_novel(t.id, n.id).await.unwrap().id, n.id);
        assert_not_found(s.get_chapter(other.id, c.id).await);
        assert_not_found(s.get_novel(other.id, n.id).await);
        assert_not_found(s.get_chapter(t.id, ChapterId::new()).await);
    }
    let name = ctx.db.url.rsplit('/').next().unwrap().to_owned();
    let mut admin = AsyncPgConnection::establish(&pg_admin_url()).await.unwrap();
    let open: Vec<N> = diesel::sql_query(
        "SELECT COUNT(*)::bigint AS n FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
    )
    .bind::<Text, _>(&name)
    .load(&mut admin)
    .await
    .unwrap();
    assert_eq!(open[0].n, 0, "connections left in a transaction");
    // The pooled connections are fit for writes after those reads, and the next reads
    // see what was written.
    let mut renamed = c.clone();
    renamed.title = "Renamed".into();
    s.update_chapter(&renamed).await.unwrap();
    for _ in 0..4 {
        assert_eq!(s.get_chapter(t.id, c.id).await.unwrap().title, "Renamed");
    }
}

/// The chapter cache listens from the first display read on, and answers from memory only
/// while it hears of every write: with the notifying trigger disabled an operator's SQL
/// goes unnoticed (the kept chapter is shown), but once its listening connection is cut it
/// reads the database again, stays off while the trigger is disabled, and comes back on,
/// empty, when the trigger is enabled again.
#[tokio::test(flavor = "multi_thread")]
async fn the_chapter_cache_is_off_until_it_listens_again() {
    use crate::shown::{shown_until, until_serving};
    let ctx = Ctx::new(DbBackend::Postgres).await;
    let s = &ctx.store;
    let listening = "pg_stat_activity WHERE application_name = 'znovel-chapter-cache' \
                     AND datname = current_database()";
    let (t, n) = tenant_with_novel(s, "listen").await;
    let c = chapter(&n, 1, 12);
    s.insert_chapter(&c, None).await.unwrap();
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), c);
    // Writes, and the reads that decide writes, start no listener: a process that never
    // shows a chapter (a job worker, `znovel migrate`) holds no connection for it.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert!(!s.chapter_cache_serving());
    assert_eq!(ctx.count(listening).await, 0);
    // The first display read starts it; its insert was committed before it listened.
    until_serving(s).await;
    assert_eq!(ctx.count(listening).await, 1);
    assert_eq!(s.chapter_cache_stats().notifications, 0);
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), c);
    let hits = s.chapter_cache_stats().hits;
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), c);
    assert_eq!(s.chapter_cache_stats().hits, hits + 1, "shown from memory");

    ctx.exec("ALTER TABLE chapters DISABLE TRIGGER chapters_notify")
        .await;
    ctx.exec(&format!(
        "UPDATE chapters SET title = 'unnoticed' WHERE id = '{}'",
        c.id
    ))
    .await;
    // Kept: the update was not heard of.
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap().title, c.title);
    assert_eq!(s.chapter_cache_stats().hits, hits + 2);

    ctx.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'znovel-chapter-cache' AND datname = current_database()",
    )
    .await;
    let shown = shown_until(s, t.id, c.id, |r| {
        r.as_ref().is_ok_and(|x| x.title == "unnoticed")
    })
    .await;
    assert_eq!(shown.unwrap().title, "unnoticed");
    // The trigger is disabled: listening again would miss writes, so the cache stays off.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(!s.chapter_cache_serving());

    ctx.exec("ALTER TABLE chapters ENABLE TRIGGER chapters_notify")
        .await;
    until_serving(s).await;
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap().title, "unnoticed");
    ctx.exec(&format!(
        "UPDATE chapters SET title = 'heard of' WHERE id = '{}'",
        c.id
    ))
    .await;
    let shown = shown_until(s, t.id, c.id, |r| {
        r.as_ref().is_ok_and(|x| x.title == "heard of")
    })
    .await;
    assert_eq!(shown.unwrap().title, "heard of");
}
