//! Tenant isolation: another tenant's rows are NotFound, exactly as if absent.

use crate::support::*;
use serde_json::json;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;
use znovel_domain::services::now;

pub async fn tenant_isolation(ctx: &Ctx) {
    let s = &ctx.store;
    let (a, n) = tenant_with_novel(s, "tenant-a").await;
    let b = tenant("tenant-b");
    s.insert_tenant(&b).await.unwrap();
    let u = user(a.id, "a@x.io");
    s.insert_user(&u).await.unwrap();
    let k = api_key(a.id, u.id, "hash-a");
    s.insert_api_key(&k).await.unwrap();
    let v = volume(&n, 1);
    s.insert_volume(&v).await.unwrap();
    let c = chapter(&n, 1, 10);
    let r = revision(&c, Some(u.id));
    s.insert_chapter(&c, Some(&r)).await.unwrap();
    let (e1, e2) = (
        entity(&n, "A", EntityKind::Character),
        entity(&n, "B", EntityKind::Item),
    );
    s.insert_entity(&e1).await.unwrap();
    s.insert_entity(&e2).await.unwrap();
    let st = EntityState {
        id: EntityStateId::new(),
        tenant_id: a.id,
        entity_id: e1.id,
        chapter_id: Some(c.id),
        story_time: Some(1),
        state: "alive".into(),
        attribute_changes: json!({}),
        vital: None,
        location_id: None,
        holder_id: None,
        lost: false,
        injuries: Vec::new(),
        provenance: Provenance::default(),
        created_at: now(),
    };
    s.insert_entity_state(&st, &e1).await.unwrap();
    let rel = relation(&n, e1.id, e2.id, "owns");
    s.insert_relation(&rel).await.unwrap();
    let ev = event(&n, 1, vec![e1.id]);
    s.insert_event(&ev).await.unwrap();
    let th = thread(&n, "box", ForeshadowingStatus::Open);
    s.insert_foreshadowing(&th).await.unwrap();
    let audit = AuditEntry {
        id: AuditId::new(),
        tenant_id: a.id,
        actor_user_id: Some(u.id),
        action: "novel.create".into(),
        resource_type: "Novel".into(),
        resource_id: n.id.to_string(),
        request_id: None,
        detail: json!({}),
        created_at: now(),
    };
    s.append_audit(&audit).await.unwrap();

    let t = b.id;
    let p = || page(10, None);
    // Reads.
    assert_not_found(s.get_user(t, u.id).await);
    assert_not_found(s.find_user_by_email(t, "a@x.io").await);
    assert_not_found(s.get_api_key(t, k.id).await);
    assert_not_found(s.find_api_key_by_hash(t, "hash-a").await);
    assert_not_found(s.get_novel(t, n.id).await);
    assert_not_found(s.get_volume(t, v.id).await);
    assert_not_found(s.get_chapter(t, c.id).await);
    assert_not_found(s.find_chapter_by_seq(t, n.id, 1).await);
    assert_not_found(s.get_revision(t, r.id).await);
    assert_not_found(s.get_entity(t, e1.id).await);
    assert_not_found(s.get_relation(t, rel.id).await);
    assert_not_found(s.get_event(t, ev.id).await);
    assert_not_found(s.get_foreshadowing(t, th.id).await);
    // Lists and counts.
    assert!(s.list_users(t, p()).await.unwrap().items.is_empty());
    assert!(
        s.list_api_keys(t, None, p())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        s.list_api_keys(t, Some(u.id), p())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let novels = s
        .list_novels(t, &NovelFilter::default(), p())
        .await
        .unwrap();
    assert!(novels.items.is_empty());
    assert_eq!(s.count_novels(t).await.unwrap(), 0);
    assert!(s.list_volumes(t, n.id, p()).await.unwrap().items.is_empty());
    let chapters = s
        .list_chapters(t, n.id, &ChapterFilter::default(), p())
        .await
        .unwrap();
    assert!(chapters.items.is_empty());
    assert_eq!(s.count_chapters(t, n.id).await.unwrap(), 0);
    assert_eq!(s.max_chapter_seq(t, n.id).await.unwrap(), None);
    assert!(
        s.list_revisions(t, c.id, p())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let entities = s
        .list_entities(t, n.id, &EntityFilter::default(), p())
        .await
        .unwrap();
    assert!(entities.items.is_empty());
    assert!(
        s.list_entity_states(t, e1.id, p())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        s.list_relations(t, e1.id, p())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let events = s
        .list_events(t, n.id, &TimelineFilter::default(), p())
        .await
        .unwrap();
    assert!(events.items.is_empty());
    assert!(
        s.list_foreshadowing(t, n.id, None, p())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(s.list_audit(t, p()).await.unwrap().items.is_empty());

    // Writes through B's tenant id (the model values say tenant B).
    let as_b = |tenant: &mut TenantId| *tenant = t;
    let mut u2 = u.clone();
    as_b(&mut u2.tenant_id);
    assert_not_found(s.update_user(&u2).await);
    assert_not_found(s.touch_api_key(t, k.id, now()).await);
    assert_not_found(s.revoke_api_key(t, k.id, now()).await);
    let mut n2 = n.clone();
    as_b(&mut n2.tenant_id);
    assert_not_found(s.update_novel(&n2).await);
    let mut v2 = v.clone();
    as_b(&mut v2.tenant_id);
    assert_not_found(s.update_volume(&v2).await);
    assert_not_found(s.delete_volume(t, v.id).await);
    let mut c2 = c.clone();
    as_b(&mut c2.tenant_id);
    assert_not_found(s.update_chapter(&c2).await);
    let (c3, mut r3) = next_content(&c2, 3);
    as_b(&mut r3.tenant_id);
    assert_not_found(s.save_chapter_content(&c3, c.version, &r3).await);
    assert_not_found(s.delete_chapter(t, c.id).await);
    let mut e3 = e1.clone();
    as_b(&mut e3.tenant_id);
    assert_not_found(s.update_entity(&e3).await);
    let mut st2 = st.clone();
    st2.id = EntityStateId::new();
    as_b(&mut st2.tenant_id);
    assert_not_found(s.insert_entity_state(&st2, &e3).await);
    assert_not_found(s.delete_entity(t, e1.id).await);
    let mut rel2 = rel.clone();
    as_b(&mut rel2.tenant_id);
    assert_not_found(s.update_relation(&rel2).await);
    assert_not_found(s.delete_relation(t, rel.id).await);
    let mut ev2 = ev.clone();
    as_b(&mut ev2.tenant_id);
    assert_not_found(s.update_event(&ev2).await);
    assert_not_found(s.delete_event(t, ev.id).await);
    let mut th2 = th.clone();
    as_b(&mut th2.tenant_id);
    assert_not_found(s.update_foreshadowing(&th2).await);
    assert_not_found(s.delete_foreshadowing(t, th.id).await);
    // Children of A's rows cannot be created under B's tenant id.
    let mut c4 = chapter(&n, 2, 0);
    as_b(&mut c4.tenant_id);
    let refused = s.insert_chapter(&c4, None).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    let mut e4 = entity(&n, "Sneaky", EntityKind::Concept);
    as_b(&mut e4.tenant_id);
    assert_not_found(s.insert_entity(&e4).await);

    // A's data is untouched.
    assert_eq!(s.get_user(a.id, u.id).await.unwrap(), u);
    assert_eq!(s.get_api_key(a.id, k.id).await.unwrap(), k);
    assert_eq!(s.get_novel(a.id, n.id).await.unwrap().title, n.title);
    assert_eq!(s.get_volume(a.id, v.id).await.unwrap(), v);
    assert_eq!(s.get_chapter(a.id, c.id).await.unwrap(), c);
    assert_eq!(s.get_entity(a.id, e1.id).await.unwrap(), e1);
    assert_eq!(
        s.list_entity_states(a.id, e1.id, p()).await.unwrap().items,
        vec![st]
    );
    assert_eq!(s.get_relation(a.id, rel.id).await.unwrap(), rel);
    assert_eq!(s.get_event(a.id, ev.id).await.unwrap(), ev);
    assert_eq!(s.get_foreshadowing(a.id, th.id).await.unwrap(), th);
    assert_eq!(s.list_audit(a.id, p()).await.unwrap().items, vec![audit]);
}
