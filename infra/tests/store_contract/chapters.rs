//! Chapters, revisions, the novel's word count, cascades.

use crate::support::*;
use std::sync::Arc;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;

pub async fn chapter_round_trip(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "chapters").await;
    let u = user(t.id, "w@x.io");
    s.insert_user(&u).await.unwrap();
    let v = volume(&n, 1);
    s.insert_volume(&v).await.unwrap();

    let mut c = chapter(&n, 1, 12);
    c.volume_id = Some(v.id);
    let r = revision(&c, Some(u.id));
    s.insert_chapter(&c, Some(&r)).await.unwrap();
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), c);
    assert_eq!(s.find_chapter_by_seq(t.id, n.id, 1).await.unwrap(), c);
    assert_eq!(s.get_revision(t.id, r.id).await.unwrap(), r);
    assert_eq!(s.count_chapters(t.id, n.id).await.unwrap(), 1);
    assert_eq!(s.max_chapter_seq(t.id, n.id).await.unwrap(), Some(1));

    // An empty chapter with every optional field unset.
    let mut bare = chapter(&n, 4, 0);
    (
        bare.story_time_start,
        bare.story_time_end,
        bare.target_word_count,
    ) = (None, None, None);
    s.insert_chapter(&bare, None).await.unwrap();
    assert_eq!(s.get_chapter(t.id, bare.id).await.unwrap(), bare);
    assert_eq!(s.max_chapter_seq(t.id, n.id).await.unwrap(), Some(4));

    // update_chapter writes the metadata only, never content/word_count/version.
    let mut meta = c.clone();
    meta.volume_id = None;
    meta.seq = 2;
    meta.title = "Retitled".into();
    meta.outline = "new beats".into();
    meta.summary = "new summary".into();
    meta.story_time_start = Some(-5);
    meta.story_time_end = None;
    meta.target_word_count = None;
    meta.status = ChapterStatus::Completed;
    meta.updated_at = at(4);
    let mut sneaky = meta.clone();
    sneaky.content = "ignored".into();
    sneaky.word_count = 1;
    sneaky.version = 42;
    s.update_chapter(&sneaky).await.unwrap();
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), meta);
    assert_not_found(s.find_chapter_by_seq(t.id, n.id, 1).await);
    assert_not_found(s.update_chapter(&chapter(&n, 9, 0)).await);
    assert_not_found(s.get_chapter(t.id, ChapterId::new()).await);
    assert_not_found(s.get_revision(t.id, RevisionId::new()).await);

    // A chapter of a novel that does not exist is refused.
    assert_not_found(
        s.insert_chapter(&chapter(&novel(t.id, "x"), 1, 0), None)
            .await,
    );
    let empty = novel(t.id, "Empty");
    s.insert_novel(&empty).await.unwrap();
    assert_eq!(s.max_chapter_seq(t.id, empty.id).await.unwrap(), None);
    assert_eq!(s.count_chapters(t.id, empty.id).await.unwrap(), 0);
}

pub async fn chapter_seq_conflicts(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "seq").await;
    let first = chapter(&n, 1, 10);
    s.insert_chapter(&first, Some(&revision(&first, None)))
        .await
        .unwrap();

    // Same seq, both without a volume: refused, and neither row nor revision written.
    let dup = chapter(&n, 1, 25);
    let dup_rev = revision(&dup, None);
    assert_conflict(s.insert_chapter(&dup, Some(&dup_rev)).await);
    assert_not_found(s.get_chapter(t.id, dup.id).await);
    assert_not_found(s.get_revision(t.id, dup_rev.id).await);
    assert_eq!(s.count_chapters(t.id, n.id).await.unwrap(), 1);
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap().word_count, 10);

    // Whatever the volume.
    let v = volume(&n, 1);
    s.insert_volume(&v).await.unwrap();
    let mut in_volume = chapter(&n, 1, 0);
    in_volume.volume_id = Some(v.id);
    assert_conflict(s.insert_chapter(&in_volume, None).await);

    // Moving a chapter onto a taken seq.
    let second = chapter(&n, 2, 0);
    s.insert_chapter(&second, None).await.unwrap();
    let mut moved = second.clone();
    moved.seq = 1;
    assert_conflict(s.update_chapter(&moved).await);
    assert_eq!(s.get_chapter(t.id, second.id).await.unwrap().seq, 2);

    // Another novel may use the same seq.
    let other = novel(t.id, "Other");
    s.insert_novel(&other).await.unwrap();
    s.insert_chapter(&chapter(&other, 1, 0), None)
        .await
        .unwrap();
}

pub async fn chapter_pages_by_seq(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "chapter-pages").await;
    let v = volume(&n, 1);
    s.insert_volume(&v).await.unwrap();
    for seq in [5, 1, 4, 2, 7, 3, 6] {
        let mut c = chapter(&n, seq, 0);
        if seq % 2 == 1 {
            c.volume_id = Some(v.id);
            c.status = ChapterStatus::Review;
        }
        s.insert_chapter(&c, None).await.unwrap();
    }
    let all = ChapterFilter::default();
    let pages = all_pages(
        3,
        |c: &Chapter| c.id.as_uuid(),
        |p| {
            let f = all.clone();
            async move { s.list_chapters(t.id, n.id, &f, p).await.unwrap() }
        },
    )
    .await;
    let seqs: Vec<Vec<i32>> = pages
        .iter()
        .map(|p| p.iter().map(|c| c.seq).collect())
        .collect();
    assert_eq!(seqs, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);

    let odd = ChapterFilter {
        volume_id: Some(v.id),
        status: Some(ChapterStatus::Review),
    };
    let pages = all_pages(
        2,
        |c: &Chapter| c.id.as_uuid(),
        |p| {
            let f = odd.clone();
            async move { s.list_chapters(t.id, n.id, &f, p).await.unwrap() }
        },
    )
    .await;
    let seqs: Vec<i32> = pages.concat().iter().map(|c| c.seq).collect();
    assert_eq!(seqs, vec![1, 3, 5, 7]);
    let drafts = ChapterFilter {
        status: Some(ChapterStatus::Draft),
        ..Default::default()
    };
    let p = s
        .list_chapters(t.id, n.id, &drafts, page(10, None))
        .await
        .unwrap();
    assert_eq!(
        p.items.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![2, 4, 6]
    );

    // A cursor from another novel is not in the list: empty page.
    let other = novel(t.id, "Other");
    s.insert_novel(&other).await.unwrap();
    let foreign = chapter(&other, 1, 0);
    s.insert_chapter(&foreign, None).await.unwrap();
    let p = s
        .list_chapters(t.id, n.id, &all, page(3, Some(foreign.id.as_uuid())))
        .await
        .unwrap();
    assert!(p.items.is_empty() && !p.has_next_page);
}

pub async fn revisions_newest_first(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "revisions").await;
    let mut c = chapter(&n, 1, 3);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    for words in 4..=9 {
        let (next, r) = next_content(&c, words);
        s.save_chapter_content(&next, c.version, &r).await.unwrap();
        assert_eq!(s.get_revision(t.id, r.id).await.unwrap(), r);
        c = next;
    }
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), c);
    let pages = all_pages(
        3,
        |r: &ChapterRevision| r.id.as_uuid(),
        |p| async move { s.list_revisions(t.id, c.id, p).await.unwrap() },
    )
    .await;
    let versions: Vec<Vec<i32>> = pages
        .iter()
        .map(|p| p.iter().map(|r| r.version).collect())
        .collect();
    assert_eq!(versions, vec![vec![7, 6, 5], vec![4, 3, 2], vec![1]]);
    assert_eq!(pages[0][0].content, c.content);
}

pub async fn save_content_version_conflict(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "versions").await;
    let c = chapter(&n, 1, 10);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();

    let (stale, stale_rev) = next_content(&c, 99);
    assert_conflict(
        s.save_chapter_content(&stale, c.version + 1, &stale_rev)
            .await,
    );
    assert_eq!(
        s.get_chapter(t.id, c.id).await.unwrap(),
        c,
        "nothing written"
    );
    assert_not_found(s.get_revision(t.id, stale_rev.id).await);
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap().word_count, 10);

    // The winner of a race writes; the loser, still expecting the old version, conflicts.
    let (a, a_rev) = next_content(&c, 20);
    let (b, b_rev) = next_content(&c, 30);
    s.save_chapter_content(&a, c.version, &a_rev).await.unwrap();
    assert_conflict(s.save_chapter_content(&b, c.version, &b_rev).await);
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), a);
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap().word_count, 20);

    let ghost = chapter(&n, 5, 1);
    let (g, g_rev) = next_content(&ghost, 2);
    assert_not_found(s.save_chapter_content(&g, ghost.version, &g_rev).await);
}

pub async fn word_count_maintenance(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "words").await;
    let wc = || async { s.get_novel(t.id, n.id).await.unwrap().word_count };
    let c1 = chapter(&n, 1, 100);
    s.insert_chapter(&c1, Some(&revision(&c1, None)))
        .await
        .unwrap();
    assert_eq!(wc().await, 100);
    let c2 = chapter(&n, 2, 50);
    s.insert_chapter(&c2, Some(&revision(&c2, None)))
        .await
        .unwrap();
    assert_eq!(wc().await, 150);
    let (c1b, r) = next_content(&c1, 70);
    s.save_chapter_content(&c1b, c1.version, &r).await.unwrap();
    assert_eq!(wc().await, 120);
    s.delete_chapter(t.id, c2.id).await.unwrap();
    assert_eq!(wc().await, 70);
    // Metadata updates and novel updates leave it alone.
    let mut meta = c1b.clone();
    meta.title = "t".into();
    s.update_chapter(&meta).await.unwrap();
    s.update_novel(&n).await.unwrap();
    assert_eq!(wc().await, 70);
    assert_not_found(s.delete_chapter(t.id, c2.id).await);
}

pub async fn concurrent_chapter_writes(ctx: &Ctx) {
    let store = Arc::new(ctx.store.clone());
    let (t, n) = tenant_with_novel(&store, "concurrent").await;
    let tasks: Vec<_> = (1..=20)
        .map(|seq| {
            let (store, n) = (store.clone(), n.clone());
            tokio::spawn(async move {
                let c = chapter(&n, seq, i64::from(seq));
                store.insert_chapter(&c, Some(&revision(&c, None))).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.count_chapters(t.id, n.id).await.unwrap(), 20);
    assert_eq!(
        store.get_novel(t.id, n.id).await.unwrap().word_count,
        (1..=20).sum::<i64>()
    );
}

/// While another connection holds a write open (an import, a long save), reads do not
/// wait for it: they answer at once with what was last committed. On SQLite a point read
/// runs on the server's own threads, so one that waited for the write lock would stall
/// other requests too.
pub async fn reads_do_not_wait_for_a_writer(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "reader").await;
    let c = chapter(&n, 1, 3);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    let held = ctx
        .hold_write("UPDATE chapters SET title = 'Not yet committed'")
        .await;
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        (
            s.get_chapter(t.id, c.id).await.unwrap(),
            s.get_novel(t.id, n.id).await.unwrap(),
        )
    })
    .await
    .expect("the reads waited for the writer");
    assert_eq!(read.0.title, c.title);
    assert_eq!(read.1.id, n.id);
    held.rollback().await;
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap().title, c.title);
}
