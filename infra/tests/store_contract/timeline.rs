//! Timeline events and foreshadowing threads.

use crate::support::*;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;

pub async fn events_timeline(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "timeline").await;
    let c = chapter(&n, 1, 0);
    s.insert_chapter(&c, None).await.unwrap();
    let (a, place) = (
        entity(&n, "A", EntityKind::Character),
        entity(&n, "P", EntityKind::Location),
    );
    s.insert_entity(&a).await.unwrap();
    s.insert_entity(&place).await.unwrap();

    let mut full = event(&n, 40, vec![a.id, place.id]);
    (full.chapter_id, full.location_id) = (Some(c.id), Some(place.id));
    s.insert_event(&full).await.unwrap();
    assert_eq!(s.get_event(t.id, full.id).await.unwrap(), full);
    let mut bare = event(&n, -10, vec![]);
    bare.story_time_end = None;
    s.insert_event(&bare).await.unwrap();
    assert_eq!(s.get_event(t.id, bare.id).await.unwrap(), bare);

    // Story times out of insertion order, with ties broken by id.
    let mut all = vec![full.clone(), bare.clone()];
    for start in [30, 10, 30, 20, 10] {
        let e = event(&n, start, vec![a.id]);
        s.insert_event(&e).await.unwrap();
        all.push(e);
    }
    all.sort_by_key(|e| (e.story_time_start, e.id));
    let every = TimelineFilter::default();
    let pages = all_pages(
        3,
        |e: &Event| e.id.as_uuid(),
        |p| {
            let f = every.clone();
            async move { s.list_events(t.id, n.id, &f, p).await.unwrap() }
        },
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert_eq!(pages.concat(), all);

    let window = TimelineFilter {
        from: Some(10),
        to: Some(30),
    };
    let pages = all_pages(
        2,
        |e: &Event| e.id.as_uuid(),
        |p| {
            let f = window.clone();
            async move { s.list_events(t.id, n.id, &f, p).await.unwrap() }
        },
    )
    .await;
    let expected: Vec<Event> = all
        .iter()
        .filter(|e| (10..=30).contains(&e.story_time_start))
        .cloned()
        .collect();
    assert_eq!(pages.concat(), expected);
    let until = TimelineFilter {
        to: Some(10),
        ..Default::default()
    };
    let p = s
        .list_events(t.id, n.id, &until, page(10, None))
        .await
        .unwrap();
    assert_eq!(
        p.items
            .iter()
            .map(|e| e.story_time_start)
            .collect::<Vec<_>>(),
        vec![-10, 10, 10]
    );
    // A cursor outside the window is not in the list.
    let p = s
        .list_events(t.id, n.id, &window, page(5, Some(full.id.as_uuid())))
        .await
        .unwrap();
    assert!(p.items.is_empty());

    let mut changed = full.clone();
    changed.chapter_id = None;
    changed.title = "moved".into();
    changed.summary = "s2".into();
    changed.story_time_start = 5;
    changed.story_time_end = None;
    changed.location_id = None;
    changed.involved = vec![place.id];
    changed.importance = 0;
    changed.updated_at = at(3);
    s.update_event(&changed).await.unwrap();
    assert_eq!(s.get_event(t.id, full.id).await.unwrap(), changed);
    assert_not_found(s.update_event(&event(&n, 1, vec![])).await);

    s.delete_event(t.id, full.id).await.unwrap();
    assert_not_found(s.get_event(t.id, full.id).await);
    assert_not_found(s.delete_event(t.id, full.id).await);
}

pub async fn foreshadowing(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "threads").await;
    let (c1, c2) = (chapter(&n, 1, 0), chapter(&n, 2, 0));
    s.insert_chapter(&c1, None).await.unwrap();
    s.insert_chapter(&c2, None).await.unwrap();

    let mut open = Vec::new();
    let mut every = Vec::new();
    for i in 0..6 {
        let status = match i % 3 {
            0 => ForeshadowingStatus::Open,
            1 => ForeshadowingStatus::Resolved,
            _ => ForeshadowingStatus::Abandoned,
        };
        let mut f = thread(&n, &format!("T{i}"), status);
        f.planted_chapter_id = Some(c1.id);
        if status == ForeshadowingStatus::Resolved {
            f.resolved_chapter_id = Some(c2.id);
        }
        s.insert_foreshadowing(&f).await.unwrap();
        assert_eq!(s.get_foreshadowing(t.id, f.id).await.unwrap(), f);
        if status == ForeshadowingStatus::Open {
            open.push(f.clone());
        }
        every.push(f);
    }
    let pages = all_pages(
        4,
        |f: &Foreshadowing| f.id.as_uuid(),
        |p| async move { s.list_foreshadowing(t.id, n.id, None, p).await.unwrap() },
    )
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 2]);
    assert_eq!(pages.concat(), every);
    let pages = all_pages(
        1,
        |f: &Foreshadowing| f.id.as_uuid(),
        |p| async move {
            let status = Some(ForeshadowingStatus::Open);
            s.list_foreshadowing(t.id, n.id, status, p).await.unwrap()
        },
    )
    .await;
    assert_eq!(pages.concat(), open);

    let mut f = every[0].clone();
    f.title = "The box".into();
    f.description = "d".into();
    f.planted_chapter_id = None;
    f.expected_payoff = "opens in the finale".into();
    f.resolved_chapter_id = Some(c2.id);
    f.status = ForeshadowingStatus::Resolved;
    f.updated_at = at(8);
    s.update_foreshadowing(&f).await.unwrap();
    assert_eq!(s.get_foreshadowing(t.id, f.id).await.unwrap(), f);
    assert_not_found(
        s.update_foreshadowing(&thread(&n, "x", ForeshadowingStatus::Open))
            .await,
    );

    s.delete_foreshadowing(t.id, f.id).await.unwrap();
    assert_not_found(s.get_foreshadowing(t.id, f.id).await);
    assert_not_found(s.delete_foreshadowing(t.id, ForeshadowingId::new()).await);
}
