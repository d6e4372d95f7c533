//! Cascades of deleting a chapter or a novel.

use crate::support::*;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;

pub async fn chapter_delete_cascades(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "cascade").await;
    let c = chapter(&n, 1, 5);
    let r = revision(&c, None);
    s.insert_chapter(&c, Some(&r)).await.unwrap();
    let (a, b) = (
        entity(&n, "A", EntityKind::Character),
        entity(&n, "B", EntityKind::Character),
    );
    s.insert_entity(&a).await.unwrap();
    s.insert_entity(&b).await.unwrap();
    let mut ev = event(&n, 1, vec![a.id]);
    ev.chapter_id = Some(c.id);
    s.insert_event(&ev).await.unwrap();
    let mut rel = relation(&n, a.id, b.id, "friend");
    rel.since_chapter_id = Some(c.id);
    s.insert_relation(&rel).await.unwrap();
    let mut th = thread(&n, "box", ForeshadowingStatus::Resolved);
    (th.planted_chapter_id, th.resolved_chapter_id) = (Some(c.id), Some(c.id));
    s.insert_foreshadowing(&th).await.unwrap();
    let st = EntityState {
        id: EntityStateId::new(),
        tenant_id: t.id,
        entity_id: a.id,
        chapter_id: Some(c.id),
        story_time: Some(1),
        state: "wounded".into(),
        attribute_changes: serde_json::json!({}),
        vital: None,
        location_id: None,
        holder_id: None,
        lost: false,
        injuries: Vec::new(),
        provenance: Provenance::default(),
        created_at: at(0),
    };
    s.insert_entity_state(&st, &a).await.unwrap();

    s.delete_chapter(t.id, c.id).await.unwrap();
    assert_not_found(s.get_chapter(t.id, c.id).await);
    assert_not_found(s.get_revision(t.id, r.id).await);
    assert_eq!(s.get_event(t.id, ev.id).await.unwrap().chapter_id, None);
    assert_eq!(
        s.get_relation(t.id, rel.id).await.unwrap().since_chapter_id,
        None
    );
    let th2 = s.get_foreshadowing(t.id, th.id).await.unwrap();
    assert_eq!(
        (th2.planted_chapter_id, th2.resolved_chapter_id),
        (None, None)
    );
    let states = s
        .list_entity_states(t.id, a.id, page(5, None))
        .await
        .unwrap();
    assert_eq!(states.items[0].chapter_id, None);
}

pub async fn novel_delete_cascades(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "novel-cascade").await;
    let keep = novel(t.id, "Kept");
    s.insert_novel(&keep).await.unwrap();
    let kept_chapter = chapter(&keep, 1, 1);
    s.insert_chapter(&kept_chapter, Some(&revision(&kept_chapter, None)))
        .await
        .unwrap();
    let c = chapter(&n, 1, 5);
    let r = revision(&c, None);
    s.insert_chapter(&c, Some(&r)).await.unwrap();
    let v = volume(&n, 1);
    s.insert_volume(&v).await.unwrap();
    let (a, b) = (
        entity(&n, "A", EntityKind::Character),
        entity(&n, "B", EntityKind::Location),
    );
    s.insert_entity(&a).await.unwrap();
    s.insert_entity(&b).await.unwrap();
    let rel = relation(&n, a.id, b.id, "lives in");
    s.insert_relation(&rel).await.unwrap();
    let ev = event(&n, 3, vec![a.id]);
    s.insert_event(&ev).await.unwrap();
    let th = thread(&n, "box", ForeshadowingStatus::Open);
    s.insert_foreshadowing(&th).await.unwrap();

    ctx.exec(&format!("DELETE FROM novels WHERE id = '{}'", n.id))
        .await;
    assert_not_found(s.get_novel(t.id, n.id).await);
    assert_not_found(s.get_chapter(t.id, c.id).await);
    assert_not_found(s.get_revision(t.id, r.id).await);
    assert_not_found(s.get_volume(t.id, v.id).await);
    assert_not_found(s.get_entity(t.id, a.id).await);
    assert_not_found(s.get_relation(t.id, rel.id).await);
    assert_not_found(s.get_event(t.id, ev.id).await);
    assert_not_found(s.get_foreshadowing(t.id, th.id).await);
    let left = [
        ("chapters", 1),
        ("chapter_revisions", 1),
        ("volumes", 0),
        ("entities", 0),
        ("relations", 0),
        ("events", 0),
        ("foreshadowing", 0),
    ];
    for (table, n) in left {
        let rows = ctx
            .count(&format!("{table} WHERE tenant_id = '{}'", t.id))
            .await;
        assert_eq!(rows, n, "{table}");
    }
    assert_eq!(
        s.get_chapter(t.id, kept_chapter.id).await.unwrap(),
        kept_chapter
    );
}
