//! Tenants, users, API keys, audit log.

use crate::support::*;
use serde_json::json;
use znovel_domain::auth::{Role, Scope};
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;
use znovel_domain::services::now;

pub async fn tenant_round_trip(ctx: &Ctx) {
    let s = &ctx.store;
    let mut t = tenant("acme");
    s.insert_tenant(&t).await.unwrap();
    assert_eq!(s.get_tenant(t.id).await.unwrap(), t);
    assert_eq!(s.find_tenant_by_slug("acme").await.unwrap(), t);

    t.name = "Acme Ltd".into();
    t.status = TenantStatus::Suspended;
    t.quota = Quota {
        max_novels: 1,
        max_chapters_per_novel: 2,
        max_tokens_per_day: 3,
        max_file_bytes: 4,
    };
    t.settings = json!({"validation": "open", "models": ["a", "b"]});
    t.updated_at = at(5);
    s.update_tenant(&t).await.unwrap();
    assert_eq!(s.get_tenant(t.id).await.unwrap(), t);

    assert_not_found(s.get_tenant(TenantId::new()).await);
    assert_not_found(s.find_tenant_by_slug("nope").await);
    assert_not_found(s.update_tenant(&tenant("ghost")).await);
}

pub async fn tenant_slug_conflict(ctx: &Ctx) {
    let s = &ctx.store;
    s.insert_tenant(&tenant("taken")).await.unwrap();
    let dup = tenant("taken");
    assert_conflict(s.insert_tenant(&dup).await);
    assert_not_found(s.get_tenant(dup.id).await);
}

pub async fn users(ctx: &Ctx) {
    let s = &ctx.store;
    let (a, b) = (tenant("a"), tenant("b"));
    s.insert_tenant(&a).await.unwrap();
    s.insert_tenant(&b).await.unwrap();

    let mut u = user(a.id, "ada@example.com");
    s.insert_user(&u).await.unwrap();
    assert_eq!(s.get_user(a.id, u.id).await.unwrap(), u);
    assert_eq!(
        s.find_user_by_email(a.id, "Ada@Example.com").await.unwrap(),
        u
    );

    let dup = user(a.id, "ada@example.com");
    assert_conflict(s.insert_user(&dup).await);
    assert_not_found(s.get_user(a.id, dup.id).await);
    // The same email in another tenant is another user.
    s.insert_user(&user(b.id, "ada@example.com")).await.unwrap();

    u.email = "lovelace@example.com".into();
    u.display_name = "Countess".into();
    u.role = Role::Admin;
    u.updated_at = at(1);
    s.update_user(&u).await.unwrap();
    assert_eq!(s.get_user(a.id, u.id).await.unwrap(), u);
    assert_not_found(s.find_user_by_email(a.id, "ada@example.com").await);

    let other = user(a.id, "other@example.com");
    s.insert_user(&other).await.unwrap();
    let mut clash = other.clone();
    clash.email = u.email.clone();
    assert_conflict(s.update_user(&clash).await);
    assert_not_found(s.update_user(&user(a.id, "ghost@example.com")).await);

    let mut ids = Vec::new();
    for i in 0..5 {
        let x = user(a.id, &format!("u{i}@example.com"));
        ids.push(x.id);
        s.insert_user(&x).await.unwrap();
    }
    let pages = all_pages(
        3,
        |x: &User| x.id.as_uuid(),
        |p| async move { s.list_users(a.id, p).await.unwrap() },
    )
    .await;
    let listed: Vec<UserId> = pages.concat().iter().map(|x| x.id).collect();
    let mut expected = vec![u.id, other.id];
    expected.extend(ids);
    assert_eq!(listed, expected);
    assert_eq!(pages.len(), 3);
}

pub async fn api_keys(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("keys");
    s.insert_tenant(&t).await.unwrap();
    let (u1, u2) = (user(t.id, "one@x.io"), user(t.id, "two@x.io"));
    s.insert_user(&u1).await.unwrap();
    s.insert_user(&u2).await.unwrap();

    let k = api_key(t.id, u1.id, "hash-1");
    s.insert_api_key(&k).await.unwrap();
    assert_eq!(s.get_api_key(t.id, k.id).await.unwrap(), k);
    assert_eq!(s.find_api_key_by_hash(t.id, "hash-1").await.unwrap(), k);
    assert_not_found(s.find_api_key_by_hash(t.id, "hash-x").await);

    let dup = api_key(t.id, u2.id, "hash-1");
    assert_conflict(s.insert_api_key(&dup).await);
    assert_not_found(s.get_api_key(t.id, dup.id).await);
    // A key of a user that does not exist (in the tenant) is refused.
    assert_not_found(
        s.insert_api_key(&api_key(t.id, UserId::new(), "hash-9"))
            .await,
    );

    let mut k2 = api_key(t.id, u2.id, "hash-2");
    k2.scopes = vec![Scope::Admin];
    s.insert_api_key(&k2).await.unwrap();
    let k3 = api_key(t.id, u1.id, "hash-3");
    s.insert_api_key(&k3).await.unwrap();

    let all = s.list_api_keys(t.id, None, page(10, None)).await.unwrap();
    assert_eq!(all.items, vec![k.clone(), k2.clone(), k3.clone()]);
    let mine = s
        .list_api_keys(t.id, Some(u1.id), page(1, None))
        .await
        .unwrap();
    assert_eq!(
        (mine.items.clone(), mine.has_next_page),
        (vec![k.clone()], true)
    );
    let mine = s
        .list_api_keys(t.id, Some(u1.id), page(1, Some(k.id.as_uuid())))
        .await
        .unwrap();
    assert_eq!((mine.items, mine.has_next_page), (vec![k3.clone()], false));
    // A cursor that is not in the (filtered) list gives an empty page.
    let none = s
        .list_api_keys(t.id, Some(u1.id), page(5, Some(k2.id.as_uuid())))
        .await
        .unwrap();
    assert!(none.items.is_empty() && !none.has_next_page);

    let used = at(10);
    s.touch_api_key(t.id, k.id, used).await.unwrap();
    let first_revoke = at(20);
    s.revoke_api_key(t.id, k.id, first_revoke).await.unwrap();
    s.revoke_api_key(t.id, k.id, at(30)).await.unwrap();
    let got = s.get_api_key(t.id, k.id).await.unwrap();
    assert_eq!(got.last_used_at, Some(used));
    assert_eq!(
        got.revoked_at,
        Some(first_revoke),
        "an earlier revocation stands"
    );
    // Revoked keys are still found by hash (the caller refuses them).
    assert_eq!(
        s.find_api_key_by_hash(t.id, "hash-1")
            .await
            .unwrap()
            .revoked_at,
        Some(first_revoke)
    );

    assert_not_found(s.touch_api_key(t.id, ApiKeyId::new(), now()).await);
    assert_not_found(s.revoke_api_key(t.id, ApiKeyId::new(), now()).await);
}

pub async fn audit_log_newest_first(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("audit");
    s.insert_tenant(&t).await.unwrap();
    let mut written = Vec::new();
    for i in 0..5 {
        let e = AuditEntry {
            id: AuditId::new(),
            tenant_id: t.id,
            actor_user_id: (i % 2 == 0).then(UserId::new),
            action: format!("novel.update.{i}"),
            resource_type: "Novel".into(),
            resource_id: NovelId::new().to_string(),
            request_id: (i % 2 == 1).then(|| format!("req-{i}")),
            detail: json!({"i": i, "fields": ["title"]}),
            created_at: now(),
        };
        s.append_audit(&e).await.unwrap();
        written.push(e);
    }
    let pages = all_pages(
        2,
        |e: &AuditEntry| e.id.as_uuid(),
        |p| async move { s.list_audit(t.id, p).await.unwrap() },
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    written.reverse();
    assert_eq!(pages.concat(), written);
    assert!(
        s.list_audit(t.id, page(5, Some(uuid::Uuid::now_v7())))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn trusted_documents(ctx: &Ctx) {
    let s = &ctx.store;
    let first = TrustedDocument::new(
        "query Me { me { id } }".into(),
        Some("Me".into()),
        now() - chrono::Duration::seconds(5),
    );
    let second = TrustedDocument::new("{ __typename }".into(), None, now());
    assert_eq!(s.find_trusted_document(&first.hash).await.unwrap(), None);
    assert!(s.register_trusted_document(&first).await.unwrap());
    assert!(s.register_trusted_document(&second).await.unwrap());
    // Registering the same text again changes nothing and is not an error.
    let again = TrustedDocument::new(first.document.clone(), None, now());
    assert!(!s.register_trusted_document(&again).await.unwrap());
    assert_eq!(
        s.find_trusted_document(&first.hash).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        s.list_trusted_documents().await.unwrap(),
        vec![first, second]
    );
}
