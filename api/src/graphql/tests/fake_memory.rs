//! The in-memory store's story-bible and audit repositories.

use super::fake::{FakeStore, R, delete, get, page, scoped, update};
use async_graphql::async_trait::async_trait;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::*;

#[async_trait]
impl EntityRepository for FakeStore {
    async fn insert_entity(&self, e: &Entity) -> R<()> {
        self.with(|s| s.entities.push(e.clone()));
        Ok(())
    }
    async fn get_entity(&self, t: TenantId, id: EntityId) -> R<Entity> {
        self.with(|s| get(&s.entities, t, id.as_uuid()))
    }
    async fn list_entities(
        &self,
        t: TenantId,
        n: NovelId,
        f: &EntityFilter,
        p: PageRequest,
    ) -> R<Page<Entity>> {
        let keep = |e: &Entity| e.novel_id == n && f.kind.is_none_or(|k| e.kind == k);
        self.with(|s| page(scoped(&s.entities, t, keep), p))
    }
    async fn update_entity(&self, e: &Entity) -> R<()> {
        self.with(|s| update(&mut s.entities, e))
    }
    async fn delete_entity(&self, t: TenantId, id: EntityId) -> R<()> {
        self.with(|s| delete(&mut s.entities, t, id.as_uuid()))
    }
    async fn insert_entity_state(&self, st: &EntityState, e: &Entity) -> R<()> {
        self.with(|s| {
            update(&mut s.entities, e)?;
            s.states.push(st.clone());
            Ok(())
        })
    }
    async fn get_entity_state(&self, t: TenantId, id: EntityStateId) -> R<EntityState> {
        self.with(|s| get(&s.states, t, id.as_uuid()))
    }
    async fn update_entity_state(&self, st: &EntityState) -> R<()> {
        self.with(|s| update(&mut s.states, st))
    }
    async fn delete_entity_state(&self, t: TenantId, id: EntityStateId) -> R<()> {
        self.with(|s| delete(&mut s.states, t, id.as_uuid()))
    }
    async fn list_entity_states(
        &self,
        t: TenantId,
        e: EntityId,
        p: PageRequest,
    ) -> R<Page<EntityState>> {
        self.with(|s| page(scoped(&s.states, t, |x| x.entity_id == e), p))
    }
}

#[async_trait]
impl RelationRepository for FakeStore {
    async fn insert_relation(&self, r: &Relation) -> R<()> {
        self.with(|s| s.relations.push(r.clone()));
        Ok(())
    }
    async fn get_relation(&self, t: TenantId, id: RelationId) -> R<Relation> {
        self.with(|s| get(&s.relations, t, id.as_uuid()))
    }
    async fn list_relations(&self, t: TenantId, e: EntityId, p: PageRequest) -> R<Page<Relation>> {
        self.with(|s| {
            page(
                scoped(&s.relations, t, |r| r.source_id == e || r.target_id == e),
                p,
            )
        })
    }
    async fn update_relation(&self, r: &Relation) -> R<()> {
        self.with(|s| update(&mut s.relations, r))
    }
    async fn delete_relation(&self, t: TenantId, id: RelationId) -> R<()> {
        self.with(|s| delete(&mut s.relations, t, id.as_uuid()))
    }
}

#[async_trait]
impl EventRepository for FakeStore {
    async fn insert_event(&self, e: &Event) -> R<()> {
        self.with(|s| s.events.push(e.clone()));
        Ok(())
    }
    async fn get_event(&self, t: TenantId, id: EventId) -> R<Event> {
        self.with(|s| get(&s.events, t, id.as_uuid()))
    }
    async fn list_events(
        &self,
        t: TenantId,
        n: NovelId,
        _f: &TimelineFilter,
        p: PageRequest,
    ) -> R<Page<Event>> {
        self.with(|s| page(scoped(&s.events, t, |e| e.novel_id == n), p))
    }
    async fn update_event(&self, e: &Event) -> R<()> {
        self.with(|s| update(&mut s.events, e))
    }
    async fn delete_event(&self, t: TenantId, id: EventId) -> R<()> {
        self.with(|s| delete(&mut s.events, t, id.as_uuid()))
    }
}

#[async_trait]
impl ForeshadowingRepository for FakeStore {
    async fn insert_foreshadowing(&self, f: &Foreshadowing) -> R<()> {
        self.with(|s| s.threads.push(f.clone()));
        Ok(())
    }
    async fn get_foreshadowing(&self, t: TenantId, id: ForeshadowingId) -> R<Foreshadowing> {
        self.with(|s| get(&s.threads, t, id.as_uuid()))
    }
    async fn list_foreshadowing(
        &self,
        t: TenantId,
        n: NovelId,
        st: Option<ForeshadowingStatus>,
        p: PageRequest,
    ) -> R<Page<Foreshadowing>> {
        let keep = |f: &Foreshadowing| f.novel_id == n && st.is_none_or(|st| f.status == st);
        self.with(|s| page(scoped(&s.threads, t, keep), p))
    }
    async fn update_foreshadowing(&self, f: &Foreshadowing) -> R<()> {
        self.with(|s| update(&mut s.threads, f))
    }
    async fn delete_foreshadowing(&self, t: TenantId, id: ForeshadowingId) -> R<()> {
        self.with(|s| delete(&mut s.threads, t, id.as_uuid()))
    }
}

#[async_trait]
impl AuditRepository for FakeStore {
    async fn append_audit(&self, e: &AuditEntry) -> R<()> {
        self.with(|s| s.audit.push(e.clone()));
        Ok(())
    }
    async fn list_audit(&self, t: TenantId, p: PageRequest) -> R<Page<AuditEntry>> {
        let mut rows = self.with(|s| scoped(&s.audit, t, |_| true));
        rows.reverse();
        page(rows, p)
    }
}
