//! The timeline: events ordered by (story_time_start, id).

use super::{cursor, page_of, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::EventRow;
use crate::sql::schema::events;
use crate::sql::types::{DbUuid, ToDb};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::{EventId, NovelId, TenantId};
use znovel_domain::model::Event;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{EventRepository, StoreResult, TimelineFilter};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, e: &Event) -> StoreResult<()> {
        tx!(conn, Some(e.tenant_id), Write, {
            diesel::insert_into(events::table)
                .values(EventRow::from(e))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(conn: &mut Conn, tenant: TenantId, id: EventId) -> StoreResult<Event> {
        tx!(conn, Some(tenant), Read, {
            events::table
                .filter(events::id.eq(id.db()))
                .filter(events::tenant_id.eq(tenant.db()))
                .select(EventRow::as_select())
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
        filter: &TimelineFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                let mut q = events::table
                    .filter(events::tenant_id.eq(tenant.db()))
                    .filter(events::novel_id.eq(novel.db()))
                    .into_boxed::<Db>();
                if let Some(from) = filter.from {
                    q = q.filter(events::story_time_start.ge(from));
                }
                if let Some(to) = filter.to {
                    q = q.filter(events::story_time_start.le(to));
                }
                q
            };
            let mut q = scope()
                .select(EventRow::as_select())
                .order((events::story_time_start.asc(), events::id.asc()))
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let key = scope()
                    .filter(events::id.eq(after))
                    .select((events::story_time_start, events::id))
                    .first::<(i64, DbUuid)>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some((start, id)) = key else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(
                    events::story_time_start
                        .gt(start)
                        .or(events::story_time_start.eq(start).and(events::id.gt(id))),
                );
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn update(conn: &mut Conn, e: &Event) -> StoreResult<()> {
        let row = EventRow::from(e);
        tx!(conn, Some(e.tenant_id), Write, {
            let rows = diesel::update(
                events::table
                    .filter(events::id.eq(row.id))
                    .filter(events::tenant_id.eq(row.tenant_id)),
            )
            .set((
                events::chapter_id.eq(row.chapter_id),
                events::title.eq(&row.title),
                events::summary.eq(&row.summary),
                events::story_time_start.eq(row.story_time_start),
                events::story_time_end.eq(row.story_time_end),
                events::location_id.eq(row.location_id),
                events::involved.eq(&row.involved),
                events::importance.eq(row.importance),
                events::origin.eq(&row.origin),
                events::origin_chapter_id.eq(row.origin_chapter_id),
                events::span_start.eq(row.span_start),
                events::span_end.eq(row.span_end),
                events::updated_at.eq(row.updated_at),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn delete(conn: &mut Conn, tenant: TenantId, id: EventId) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::delete(
                events::table
                    .filter(events::id.eq(id.db()))
                    .filter(events::tenant_id.eq(tenant.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }
}

#[async_trait]
impl EventRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %event.tenant_id, event = %event.id))]
    async fn insert_event(&self, event: &Event) -> StoreResult<()> {
        dispatch!(self, insert(event))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, event = %id))]
    async fn get_event(&self, tenant: TenantId, id: EventId) -> StoreResult<Event> {
        dispatch!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn list_events(
        &self,
        tenant: TenantId,
        novel: NovelId,
        filter: &TimelineFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        dispatch!(self, list(tenant, novel, filter, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %event.tenant_id, event = %event.id))]
    async fn update_event(&self, event: &Event) -> StoreResult<()> {
        dispatch!(self, update(event))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, event = %id))]
    async fn delete_event(&self, tenant: TenantId, id: EventId) -> StoreResult<()> {
        dispatch!(self, delete(tenant, id))
    }
}
