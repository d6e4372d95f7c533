//! Chapters shown (`show_chapter`, answered from memory when the store has them): never an
//! out-of-date chapter after a write of this store, of another store on the same
//! database, or of SQL the application did not send.

use crate::support::*;
use std::time::{Duration, Instant};
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;
use znovel_infra::{DbBackend, SqlStore};

/// How long another process's write may take to be seen, at most (PostgreSQL: the
/// notification of its commit; SQLite: 1 ms, while the file's last version read stands).
const NOTICED_WITHIN: Duration = Duration::from_secs(10);

/// Waits until `store` answers display reads from memory (PostgreSQL: its listener,
/// started by a first display read, runs), for at most [`NOTICED_WITHIN`].
pub async fn until_serving(store: &SqlStore) {
    let nobody = store.show_chapter(TenantId::new(), ChapterId::new()).await;
    assert!(matches!(nobody, Err(StoreError::NotFound)), "{nobody:?}");
    let deadline = Instant::now() + NOTICED_WITHIN;
    while !store.chapter_cache_serving() {
        assert!(Instant::now() < deadline, "the chapter cache never came on");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Shows `id` until `done` holds for it, for at most [`NOTICED_WITHIN`]; the last shown.
pub async fn shown_until(
    store: &SqlStore,
    t: TenantId,
    id: ChapterId,
    done: impl Fn(&Result<Chapter, StoreError>) -> bool,
) -> Result<Chapter, StoreError> {
    let deadline = Instant::now() + NOTICED_WITHIN;
    loop {
        let shown = store.show_chapter(t, id).await;
        if done(&shown) || Instant::now() >= deadline {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn a_shown_chapter_follows_every_write_of_its_store(ctx: &Ctx) {
    let s = &ctx.store;
    until_serving(s).await;
    let (t, n) = tenant_with_novel(s, "shown").await;
    let v = volume(&n, 1);
    s.insert_volume(&v).await.unwrap();
    let mut c = chapter(&n, 1, 12);
    c.volume_id = Some(v.id);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), c);
    let hits = s.chapter_cache_stats().hits;
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), c, "shown twice");
    if ctx.db.backend == DbBackend::Sqlite {
        // (PostgreSQL: the insert's own notification may still drop it.)
        assert_eq!(s.chapter_cache_stats().hits, hits + 1, "shown from memory");
    }

    // Another tenant never gets it, remembered or not.
    let (other, _) = tenant_with_novel(s, "shown-other").await;
    assert_not_found(s.show_chapter(other.id, c.id).await);

    let mut meta = c.clone();
    meta.title = "Retitled".into();
    meta.status = ChapterStatus::Completed;
    s.update_chapter(&meta).await.unwrap();
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), meta);

    let (next, r) = next_content(&meta, 30);
    s.save_chapter_content(&next, meta.version, &r)
        .await
        .unwrap();
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), next);

    // A refused write changes nothing shown.
    let (stale, stale_rev) = next_content(&meta, 5);
    assert!(matches!(
        s.save_chapter_content(&stale, meta.version, &stale_rev)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), next);

    // Removing its volume changes the chapter without naming it.
    s.delete_volume(t.id, v.id).await.unwrap();
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap().volume_id, None);

    s.delete_chapter(t.id, c.id).await.unwrap();
    assert_not_found(s.show_chapter(t.id, c.id).await);
}

pub async fn a_shown_chapter_follows_writes_of_other_processes(ctx: &Ctx) {
    let s = &ctx.store;
    let elsewhere = ctx.db.connect().await.unwrap();
    until_serving(s).await;
    let (t, n) = tenant_with_novel(s, "elsewhere").await;
    let c = chapter(&n, 1, 12);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), c);

    // Another store (another process) writes it: new content, then a new title.
    let (next, r) = next_content(&c, 40);
    elsewhere
        .save_chapter_content(&next, c.version, &r)
        .await
        .unwrap();
    let shown = shown_until(s, t.id, c.id, |r| r.as_ref().is_ok_and(|x| *x == next)).await;
    assert_eq!(shown.unwrap(), next);
    if ctx.db.backend == DbBackend::Sqlite {
        // One file: a read starting a millisecond after the commit sees it, whoever made
        // it (the file's version, once read, stands that long).
        let mut retitled = next.clone();
        retitled.title = "From elsewhere".into();
        elsewhere.update_chapter(&retitled).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(s.show_chapter(t.id, c.id).await.unwrap(), retitled);
    }

    // SQL the application did not send (an operator's fix), then a removal.
    ctx.exec(&format!(
        "UPDATE chapters SET summary = 'fixed by hand' WHERE id = '{}'",
        c.id
    ))
    .await;
    let shown = shown_until(s, t.id, c.id, |r| {
        r.as_ref().is_ok_and(|x| x.summary == "fixed by hand")
    })
    .await;
    assert_eq!(shown.unwrap().summary, "fixed by hand");
    ctx.exec(&format!("DELETE FROM chapters WHERE id = '{}'", c.id))
        .await;
    assert_not_found(shown_until(s, t.id, c.id, Result::is_err).await);
}
