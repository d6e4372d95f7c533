//! Entities, their states, relations.

use crate::support::*;
use serde_json::json;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;

pub async fn entity_round_trip_and_conflicts(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "entities").await;
    let mut e = entity(&n, "Lin", EntityKind::Character);
    s.insert_entity(&e).await.unwrap();
    assert_eq!(s.get_entity(t.id, e.id).await.unwrap(), e);

    let mut bare = entity(&n, "Nowhere", EntityKind::Location);
    bare.aliases = vec![];
    bare.attributes = json!({});
    (bare.first_chapter_seq, bare.last_chapter_seq) = (None, None);
    s.insert_entity(&bare).await.unwrap();
    assert_eq!(s.get_entity(t.id, bare.id).await.unwrap(), bare);

    // (novel, kind, name) is unique; another kind may share the name.
    let dup = entity(&n, "Lin", EntityKind::Character);
    assert_conflict(s.insert_entity(&dup).await);
    assert_not_found(s.get_entity(t.id, dup.id).await);
    let sword = entity(&n, "Lin", EntityKind::Item);
    s.insert_entity(&sword).await.unwrap();

    e.name = "Lin Feng".into();
    e.aliases = vec!["Feng".into()];
    e.kind = EntityKind::Character;
    e.description = "the heir".into();
    e.attributes = json!({"age": 18, "realm": {"name": "core", "level": 3}});
    e.importance = 100;
    e.current_state = "wounded".into();
    (e.first_chapter_seq, e.last_chapter_seq, e.appearance_count) = (Some(2), None, 9);
    e.updated_at = at(7);
    s.update_entity(&e).await.unwrap();
    assert_eq!(s.get_entity(t.id, e.id).await.unwrap(), e);

    let mut clash = sword.clone();
    clash.name = "Nowhere".into();
    clash.kind = EntityKind::Location;
    assert_conflict(s.update_entity(&clash).await);
    assert_eq!(s.get_entity(t.id, sword.id).await.unwrap(), sword);
    assert_not_found(
        s.update_entity(&entity(&n, "Ghost", EntityKind::Concept))
            .await,
    );
    assert_not_found(s.get_entity(t.id, EntityId::new()).await);
}

pub async fn entity_search_and_pages(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "search").await;
    let mut elodie = entity(&n, "Élodie Marchand", EntityKind::Character);
    elodie.aliases = vec!["The Swan".into()];
    let mut ming = entity(&n, "李明", EntityKind::Character);
    ming.aliases = vec!["Little Ming".into(), "明哥".into()];
    let mut percent = entity(&n, "100% Pure", EntityKind::Item);
    percent.aliases = vec![];
    let mut tower = entity(&n, "Swan Tower", EntityKind::Location);
    tower.aliases = vec![];
    for e in [&elodie, &ming, &percent, &tower] {
        s.insert_entity(e).await.unwrap();
    }
    let search = |text: &str, kind: Option<EntityKind>| {
        let f = EntityFilter {
            kind,
            search: Some(text.to_owned()),
        };
        async move {
            let p = s
                .list_entities(t.id, n.id, &f, page(20, None))
                .await
                .unwrap();
            p.items.into_iter().map(|e| e.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("élodie", None).await,
        vec![elodie.id],
        "Unicode case-insensitive"
    );
    assert_eq!(search("MARCH", None).await, vec![elodie.id]);
    assert_eq!(
        search("swan", None).await,
        vec![elodie.id, tower.id],
        "alias or name"
    );
    assert_eq!(
        search("swan", Some(EntityKind::Location)).await,
        vec![tower.id]
    );
    assert_eq!(search("明哥", None).await, vec![ming.id]);
    assert_eq!(search("little", None).await, vec![ming.id]);
    assert_eq!(
        search("%", None).await,
        vec![percent.id],
        "LIKE wildcards are literal"
    );
    assert_eq!(search("_", None).await, Vec::<EntityId>::new());
    assert!(
        search("Swan\", \"", None).await.is_empty(),
        "no match across aliases"
    );

    let mut ids = vec![elodie.id, ming.id, percent.id, tower.id];
    for i in 0..3 {
        let e = entity(&n, &format!("Extra {i}"), EntityKind::Concept);
        s.insert_entity(&e).await.unwrap();
        ids.push(e.id);
    }
    let all = EntityFilter::default();
    let pages = all_pages(
        3,
        |e: &Entity| e.id.as_uuid(),
        |p| {
            let f = all.clone();
            async move { s.list_entities(t.id, n.id, &f, p).await.unwrap() }
        },
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert_eq!(pages.concat().iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    // Paging through a search result.
    let f = EntityFilter {
        search: Some("R".into()),
        ..Default::default()
    };
    let pages = all_pages(
        2,
        |e: &Entity| e.id.as_uuid(),
        |p| {
            let f = f.clone();
            async move { s.list_entities(t.id, n.id, &f, p).await.unwrap() }
        },
    )
    .await;
    let mut expected = ids.clone();
    expected.retain(|id| *id != ming.id);
    assert_eq!(
        pages.concat().iter().map(|e| e.id).collect::<Vec<_>>(),
        expected
    );
}

pub async fn entity_states(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "states").await;
    let c = chapter(&n, 1, 0);
    s.insert_chapter(&c, None).await.unwrap();
    let mut e = entity(&n, "Lin", EntityKind::Character);
    s.insert_entity(&e).await.unwrap();
    let mut written = Vec::new();
    for i in 0..5 {
        e.current_state = format!("state {i}");
        e.attributes["level"] = json!(i);
        e.updated_at = at(i);
        let st = EntityState {
            id: EntityStateId::new(),
            tenant_id: t.id,
            entity_id: e.id,
            chapter_id: (i % 2 == 0).then_some(c.id),
            story_time: (i % 2 == 1).then_some(i * 100),
            state: e.current_state.clone(),
            attribute_changes: json!({"level": i}),
            vital: None,
            location_id: None,
            holder_id: None,
            lost: false,
            injuries: Vec::new(),
            provenance: Provenance::default(),
            created_at: at(i),
        };
        s.insert_entity_state(&st, &e).await.unwrap();
        written.push(st);
    }
    assert_eq!(
        s.get_entity(t.id, e.id).await.unwrap(),
        e,
        "entity follows its state"
    );
    let pages = all_pages(
        2,
        |st: &EntityState| st.id.as_uuid(),
        |p| async move { s.list_entity_states(t.id, e.id, p).await.unwrap() },
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert_eq!(pages.concat(), written);

    // A state of an entity that does not exist: nothing written.
    let ghost = entity(&n, "Ghost", EntityKind::Character);
    let st = EntityState {
        entity_id: ghost.id,
        id: EntityStateId::new(),
        ..written[0].clone()
    };
    assert_not_found(s.insert_entity_state(&st, &ghost).await);
    assert!(
        s.list_entity_states(t.id, ghost.id, page(5, None))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn entity_delete_cascades(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "entity-delete").await;
    let a = entity(&n, "A", EntityKind::Character);
    let b = entity(&n, "B", EntityKind::Character);
    let place = entity(&n, "Town", EntityKind::Location);
    for e in [&a, &b, &place] {
        s.insert_entity(e).await.unwrap();
    }
    let st = EntityState {
        id: EntityStateId::new(),
        tenant_id: t.id,
        entity_id: place.id,
        chapter_id: None,
        story_time: None,
        state: "burning".into(),
        attribute_changes: json!({}),
        vital: None,
        location_id: None,
        holder_id: None,
        lost: false,
        injuries: Vec::new(),
        provenance: Provenance::default(),
        created_at: at(0),
    };
    s.insert_entity_state(&st, &place).await.unwrap();
    let r1 = relation(&n, a.id, place.id, "lives in");
    let r2 = relation(&n, place.id, b.id, "shelters");
    let r3 = relation(&n, a.id, b.id, "friend");
    for r in [&r1, &r2, &r3] {
        s.insert_relation(r).await.unwrap();
    }
    let mut ev = event(&n, 1, vec![a.id, place.id, b.id]);
    ev.location_id = Some(place.id);
    s.insert_event(&ev).await.unwrap();
    let other = event(&n, 2, vec![b.id]);
    s.insert_event(&other).await.unwrap();

    s.delete_entity(t.id, place.id).await.unwrap();
    assert_not_found(s.get_entity(t.id, place.id).await);
    assert!(
        s.list_entity_states(t.id, place.id, page(5, None))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_not_found(s.get_relation(t.id, r1.id).await);
    assert_not_found(s.get_relation(t.id, r2.id).await);
    assert_eq!(s.get_relation(t.id, r3.id).await.unwrap(), r3);
    let ev2 = s.get_event(t.id, ev.id).await.unwrap();
    assert_eq!(ev2.location_id, None);
    assert_eq!(
        ev2.involved,
        vec![a.id, b.id],
        "the id leaves the involved list"
    );
    assert_eq!(s.get_event(t.id, other.id).await.unwrap(), other);
    assert_not_found(s.delete_entity(t.id, place.id).await);
}

pub async fn relations(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "relations").await;
    let c = chapter(&n, 1, 0);
    s.insert_chapter(&c, None).await.unwrap();
    let es: Vec<Entity> = (0..4)
        .map(|i| entity(&n, &format!("E{i}"), EntityKind::Character))
        .collect();
    for e in &es {
        s.insert_entity(e).await.unwrap();
    }
    let mut r = relation(&n, es[0].id, es[1].id, "friend");
    r.since_chapter_id = Some(c.id);
    s.insert_relation(&r).await.unwrap();
    assert_eq!(s.get_relation(t.id, r.id).await.unwrap(), r);

    let dup = relation(&n, es[0].id, es[1].id, "friend");
    assert_conflict(s.insert_relation(&dup).await);
    assert_not_found(s.get_relation(t.id, dup.id).await);
    // Reverse direction and another kind are other relations.
    let back = relation(&n, es[1].id, es[0].id, "friend");
    let rival = relation(&n, es[0].id, es[1].id, "rival");
    let r3 = relation(&n, es[2].id, es[0].id, "family");
    let unrelated = relation(&n, es[2].id, es[3].id, "enemy");
    for x in [&back, &rival, &r3, &unrelated] {
        s.insert_relation(x).await.unwrap();
    }
    // An end that is not an entity of the novel is refused.
    let stray = relation(&n, es[0].id, EntityId::new(), "ghost");
    assert_not_found(s.insert_relation(&stray).await);

    let e0 = es[0].id;
    let pages = all_pages(
        2,
        |r: &Relation| r.id.as_uuid(),
        |p| async move { s.list_relations(t.id, e0, p).await.unwrap() },
    )
    .await;
    let ids: Vec<RelationId> = pages.concat().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![r.id, back.id, rival.id, r3.id]);
    assert_eq!(pages.len(), 2);

    r.kind = "sworn brother".into();
    r.strength = 1.0;
    r.description = "blood oath".into();
    r.since_chapter_id = None;
    r.updated_at = at(9);
    s.update_relation(&r).await.unwrap();
    assert_eq!(s.get_relation(t.id, r.id).await.unwrap(), r);
    let mut clash = rival.clone();
    clash.kind = "sworn brother".into();
    assert_conflict(s.update_relation(&clash).await);
    assert_not_found(s.update_relation(&dup).await);

    s.delete_relation(t.id, r.id).await.unwrap();
    assert_not_found(s.get_relation(t.id, r.id).await);
    assert_not_found(s.delete_relation(t.id, r.id).await);
}
