//! Novels and volumes.

use crate::support::*;
use serde_json::json;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;

pub async fn novel_round_trip_and_filters(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, mut n) = tenant_with_novel(s, "novels").await;
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap(), n);

    // Every column but word_count is written.
    let mut changed = n.clone();
    changed.title = "Renamed".into();
    changed.description = "d2".into();
    changed.genre = "cozy mystery".into();
    changed.language = "en".into();
    changed.target_word_count = None;
    changed.style_guide = "lush".into();
    changed.world_settings = json!({"rules": [1, 2, {"deep": true}]});
    changed.time_system = "days".into();
    changed.status = NovelStatus::Completed;
    changed.word_count = 999;
    changed.updated_at = at(3);
    s.update_novel(&changed).await.unwrap();
    changed.word_count = 0; // maintained by the chapter methods, not written here
    n = changed;
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap(), n);
    assert_not_found(s.update_novel(&novel(t.id, "ghost")).await);
    assert_not_found(s.get_novel(t.id, NovelId::new()).await);

    let mut archived = novel(t.id, "Old");
    archived.status = NovelStatus::Archived;
    s.insert_novel(&archived).await.unwrap();
    let mut draft = novel(t.id, "New");
    draft.status = NovelStatus::Draft;
    draft.target_word_count = None;
    s.insert_novel(&draft).await.unwrap();

    let default = s
        .list_novels(t.id, &NovelFilter::default(), page(10, None))
        .await
        .unwrap();
    assert_eq!(default.items, vec![n.clone(), draft.clone()]);
    let only = NovelFilter {
        status: Some(NovelStatus::Archived),
    };
    assert_eq!(
        s.list_novels(t.id, &only, page(10, None))
            .await
            .unwrap()
            .items,
        vec![archived]
    );
    assert_eq!(s.count_novels(t.id).await.unwrap(), 3);
}

pub async fn novel_pages(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("paging");
    s.insert_tenant(&t).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        let n = novel(t.id, &format!("N{i}"));
        s.insert_novel(&n).await.unwrap();
        ids.push(n.id);
    }
    let f = NovelFilter::default();
    let pages = all_pages(
        3,
        |n: &Novel| n.id.as_uuid(),
        |p| {
            let f = f.clone();
            async move { s.list_novels(t.id, &f, p).await.unwrap() }
        },
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert_eq!(pages.concat().iter().map(|n| n.id).collect::<Vec<_>>(), ids);
    // Exactly one page's worth: no next page.
    let exact = s.list_novels(t.id, &f, page(7, None)).await.unwrap();
    assert_eq!((exact.items.len(), exact.has_next_page), (7, false));
    // An unknown cursor yields an empty page.
    let none = s
        .list_novels(t.id, &f, page(3, Some(uuid::Uuid::now_v7())))
        .await
        .unwrap();
    assert!(none.items.is_empty() && !none.has_next_page);
}

pub async fn volumes(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "volumes").await;
    let (v2, v1, v3) = (volume(&n, 2), volume(&n, 1), volume(&n, 3));
    for v in [&v2, &v1, &v3] {
        s.insert_volume(v).await.unwrap();
    }
    assert_eq!(s.get_volume(t.id, v1.id).await.unwrap(), v1);

    let dup = volume(&n, 2);
    assert_conflict(s.insert_volume(&dup).await);
    assert_not_found(s.get_volume(t.id, dup.id).await);
    // A volume of a novel that does not exist is refused.
    let orphan = volume(&novel(t.id, "nowhere"), 1);
    assert_not_found(s.insert_volume(&orphan).await);

    let p1 = s.list_volumes(t.id, n.id, page(2, None)).await.unwrap();
    assert_eq!(
        (p1.items.clone(), p1.has_next_page),
        (vec![v1.clone(), v2.clone()], true)
    );
    let p2 = s
        .list_volumes(t.id, n.id, page(2, Some(v2.id.as_uuid())))
        .await
        .unwrap();
    assert_eq!((p2.items, p2.has_next_page), (vec![v3.clone()], false));

    let mut moved = v3.clone();
    moved.seq = 2;
    assert_conflict(s.update_volume(&moved).await);
    moved.seq = 9;
    moved.title = "Finale".into();
    moved.summary = "the end".into();
    moved.updated_at = at(2);
    s.update_volume(&moved).await.unwrap();
    assert_eq!(s.get_volume(t.id, v3.id).await.unwrap(), moved);
    assert_not_found(s.update_volume(&volume(&n, 50)).await);

    // Deleting a volume keeps its chapters, without a volume.
    let mut c = chapter(&n, 1, 0);
    c.volume_id = Some(v1.id);
    s.insert_chapter(&c, None).await.unwrap();
    s.delete_volume(t.id, v1.id).await.unwrap();
    assert_not_found(s.get_volume(t.id, v1.id).await);
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap().volume_id, None);
    assert_not_found(s.delete_volume(t.id, v1.id).await);
}
