//! Story-bible entities and their state history.

use super::{contains_pattern, cursor, page_of, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::{EntityRow, EntityStateRow};
use crate::sql::schema::{entities, entity_states, events};
use crate::sql::types::{DbJson, DbTime, DbUuid, SqlJson, ToDb};
use async_trait::async_trait;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;
use znovel_domain::ids::{EntityId, EntityStateId, NovelId, TenantId};
use znovel_domain::model::{Entity, EntityState};
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{EntityFilter, EntityRepository, StoreResult};

/// Name-or-alias match (case-insensitive substring; the pattern comes from
/// [`contains_pattern`], bound twice), per backend.
const PG_SEARCH: [&str; 3] = [
    "(lower(entities.name) LIKE ",
    " ESCAPE '\\' OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(entities.aliases) \
     AS a(alias) WHERE lower(a.alias) LIKE ",
    " ESCAPE '\\'))",
];
const SQLITE_SEARCH: [&str; 3] = [
    "(znovel_casefold(entities.name) LIKE ",
    " ESCAPE '\\' OR EXISTS (SELECT 1 FROM json_each(entities.aliases) AS a \
     WHERE znovel_casefold(a.value) LIKE ",
    " ESCAPE '\\'))",
];

/// Removing an entity id from `events.involved`: [filter prefix, filter suffix, new value].
const PG_UNINVOLVE: [&str; 3] = [
    "events.involved @> jsonb_build_array(",
    "::text)",
    "events.involved - ",
];
const SQLITE_UNINVOLVE: [&str; 3] = [
    "EXISTS (SELECT 1 FROM json_each(events.involved) AS j WHERE j.value = ",
    ")",
    "(SELECT json_group_array(j.value) FROM json_each(events.involved) AS j WHERE j.value <> ",
];

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, e: &Entity) -> StoreResult<()> {
        tx!(conn, Some(e.tenant_id), Write, {
            diesel::insert_into(entities::table)
                .values(EntityRow::from(e))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        id: EntityId,
    ) -> StoreResult<Entity> {
        tx!(conn, Some(tenant), Read, {
            entities::table
                .filter(entities::id.eq(id.db()))
                .filter(entities::tenant_id.eq(tenant.db()))
                .select(EntityRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        filter: &EntityFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Entity>> {
        let search = filter.search.as_deref().map(contains_pattern);
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                let mut q = entities::table
                    .filter(entities::tenant_id.eq(tenant.db()))
                    .filter(entities::novel_id.eq(novel.db()))
                    .into_boxed::<Db>();
                if let Some(kind) = filter.kind {
                    q = q.filter(entities::kind.eq(kind.as_str()));
                }
                if let Some(pattern) = &search {
                    let [a, b, c] = if PG { PG_SEARCH } else { SQLITE_SEARCH };
                    q = q.filter(
                        sql::<Bool>(a)
                            .bind::<Text, _>(pattern.clone())
                            .sql(b)
                            .bind::<Text, _>(pattern.clone())
                            .sql(c),
                    );
                }
                q
            };
            let mut q = scope()
                .select(EntityRow::as_select())
                .order(entities::id.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(entities::id.eq(after))
                    .select(entities::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(entities::id.gt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    /// Writes every column but id, tenant, novel, created_at (inside a transaction).
    async fn write(conn: &mut Conn, e: &Entity) -> StoreResult<()> {
        let row = EntityRow::from(e);
        let rows = diesel::update(
            entities::table
                .filter(entities::id.eq(e.id.db()))
                .filter(entities::tenant_id.eq(e.tenant_id.db())),
        )
        .set((
            entities::name.eq(row.name),
            entities::aliases.eq(row.aliases),
            entities::kind.eq(row.kind),
            entities::description.eq(row.description),
            entities::attributes.eq(row.attributes),
            entities::importance.eq(row.importance),
            entities::current_state.eq(row.current_state),
            entities::first_chapter_seq.eq(row.first_chapter_seq),
            entities::last_chapter_seq.eq(row.last_chapter_seq),
            entities::appearance_count.eq(row.appearance_count),
            entities::origin.eq(row.origin),
            entities::origin_chapter_id.eq(row.origin_chapter_id),
            entities::span_start.eq(row.span_start),
            entities::span_end.eq(row.span_end),
            entities::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .await
        .map_err(db_err)?;
        touched(rows)
    }

    pub(crate) async fn update(conn: &mut Conn, e: &Entity) -> StoreResult<()> {
        tx!(conn, Some(e.tenant_id), Write, { write(conn, e).await })
    }

    pub(crate) async fn delete(conn: &mut Conn, tenant: TenantId, id: EntityId) -> StoreResult<()> {
        let id_text = id.to_string();
        tx!(conn, Some(tenant), Write, {
            // States and relations cascade, events.location_id is set NULL by the schema;
            // the id is also dropped from the events' `involved` lists.
            let rows = diesel::delete(
                entities::table
                    .filter(entities::id.eq(id.db()))
                    .filter(entities::tenant_id.eq(tenant.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)?;
            let [has, has_end, without] = if PG { PG_UNINVOLVE } else { SQLITE_UNINVOLVE };
            let new_value = sql::<SqlJson>(without).bind::<Text, _>(id_text.clone());
            let new_value = if PG { new_value.sql("") } else { new_value.sql(")") };
            diesel::update(
                events::table
                    .filter(events::tenant_id.eq(tenant.db()))
                    .filter(sql::<Bool>(has).bind::<Text, _>(id_text.clone()).sql(has_end)),
            )
            .set(events::involved.eq(new_value))
            .execute(conn)
            .await
            .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn insert_state(
        conn: &mut Conn,
        s: &EntityState,
        e: &Entity,
    ) -> StoreResult<()> {
        tx!(conn, Some(s.tenant_id), Write, {
            let rows = diesel::update(
                entities::table
                    .filter(entities::id.eq(e.id.db()))
                    .filter(entities::tenant_id.eq(s.tenant_id.db())),
            )
            .set((
                entities::current_state.eq(&e.current_state),
                entities::attributes.eq(DbJson(e.attributes.clone())),
                entities::updated_at.eq(DbTime(e.updated_at)),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)?;
            diesel::insert_into(entity_states::table)
                .values(EntityStateRow::from(s))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get_state(
        conn: &mut Conn,
        tenant: TenantId,
        id: EntityStateId,
    ) -> StoreResult<EntityState> {
        tx!(conn, Some(tenant), Read, {
            entity_states::table
                .filter(entity_states::id.eq(id.db()))
                .filter(entity_states::tenant_id.eq(tenant.db()))
                .select(EntityStateRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn update_state(conn: &mut Conn, s: &EntityState) -> StoreResult<()> {
        let row = EntityStateRow::from(s);
        tx!(conn, Some(s.tenant_id), Write, {
            let rows = diesel::update(
                entity_states::table
                    .filter(entity_states::id.eq(s.id.db()))
                    .filter(entity_states::tenant_id.eq(s.tenant_id.db())),
            )
            .set((
                entity_states::chapter_id.eq(row.chapter_id),
                entity_states::story_time.eq(row.story_time),
                entity_states::state.eq(row.state),
                entity_states::attribute_changes.eq(row.attribute_changes),
                entity_states::vital.eq(row.vital),
                entity_states::location_id.eq(row.location_id),
                entity_states::holder_id.eq(row.holder_id),
                entity_states::lost.eq(row.lost),
                entity_states::injuries.eq(row.injuries),
                entity_states::origin.eq(row.origin),
                entity_states::origin_chapter_id.eq(row.origin_chapter_id),
                entity_states::span_start.eq(row.span_start),
                entity_states::span_end.eq(row.span_end),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn delete_state(
        conn: &mut Conn,
        tenant: TenantId,
        id: EntityStateId,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::delete(
                entity_states::table
                    .filter(entity_states::id.eq(id.db()))
                    .filter(entity_states::tenant_id.eq(tenant.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn list_states(
        conn: &mut Conn,
        tenant: TenantId,
        entity: EntityId,
        page: PageRequest,
    ) -> StoreResult<Page<EntityState>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                entity_states::table
                    .filter(entity_states::tenant_id.eq(tenant.db()))
                    .filter(entity_states::entity_id.eq(entity.db()))
                    .into_boxed::<Db>()
            };
            let mut q = scope()
                .select(EntityStateRow::as_select())
                .order(entity_states::id.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(entity_states::id.eq(after))
                    .select(entity_states::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(entity_states::id.gt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }
}

#[async_trait]
impl EntityRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %entity.tenant_id, entity = %entity.id))]
    async fn insert_entity(&self, entity: &Entity) -> StoreResult<()> {
        dispatch!(self, insert(entity))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, entity = %id))]
    async fn get_entity(&self, tenant: TenantId, id: EntityId) -> StoreResult<Entity> {
        dispatch!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn list_entities(
        &self,
        tenant: TenantId,
        novel: NovelId,
        filter: &EntityFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Entity>> {
        dispatch!(self, list(tenant, novel, filter, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %entity.tenant_id, entity = %entity.id))]
    async fn update_entity(&self, entity: &Entity) -> StoreResult<()> {
        dispatch!(self, update(entity))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, entity = %id))]
    async fn delete_entity(&self, tenant: TenantId, id: EntityId) -> StoreResult<()> {
        dispatch!(self, delete(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %state.tenant_id, entity = %entity.id))]
    async fn insert_entity_state(&self, state: &EntityState, entity: &Entity) -> StoreResult<()> {
        dispatch!(self, insert_state(state, entity))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, state = %id))]
    async fn get_entity_state(
        &self,
        tenant: TenantId,
        id: EntityStateId,
    ) -> StoreResult<EntityState> {
        dispatch!(self, get_state(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %state.tenant_id, state = %state.id))]
    async fn update_entity_state(&self, state: &EntityState) -> StoreResult<()> {
        dispatch!(self, update_state(state))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, state = %id))]
    async fn delete_entity_state(&self, tenant: TenantId, id: EntityStateId) -> StoreResult<()> {
        dispatch!(self, delete_state(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, entity = %entity))]
    async fn list_entity_states(
        &self,
        tenant: TenantId,
        entity: EntityId,
        page: PageRequest,
    ) -> StoreResult<Page<EntityState>> {
        dispatch!(self, list_states(tenant, entity, page))
    }
}
