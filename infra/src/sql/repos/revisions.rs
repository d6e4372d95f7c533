//! Chapter revisions (read side; they are written by the chapter methods in
//! [`super::chapters`], in the chapter's transaction). Listed newest (highest version)
//! first. The port is implemented in `chapters.rs`.

use super::{cursor, page_of};
use crate::sql::error::db_err;
use crate::sql::rows::RevisionRow;
use crate::sql::schema::chapter_revisions;
use crate::sql::types::ToDb;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::{ChapterId, RevisionId, TenantId};
use znovel_domain::model::ChapterRevision;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::StoreResult;

per_backend! {
    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        id: RevisionId,
    ) -> StoreResult<ChapterRevision> {
        tx!(conn, Some(tenant), Read, {
            chapter_revisions::table
                .filter(chapter_revisions::id.eq(id.db()))
                .filter(chapter_revisions::tenant_id.eq(tenant.db()))
                .select(RevisionRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        chapter: ChapterId,
        page: PageRequest,
    ) -> StoreResult<Page<ChapterRevision>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                chapter_revisions::table
                    .filter(chapter_revisions::tenant_id.eq(tenant.db()))
                    .filter(chapter_revisions::chapter_id.eq(chapter.db()))
                    .into_boxed::<Db>()
            };
            let mut q = scope()
                .select(RevisionRow::as_select())
                .order(chapter_revisions::version.desc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let version = scope()
                    .filter(chapter_revisions::id.eq(after))
                    .select(chapter_revisions::version)
                    .first::<i32>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(version) = version else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(chapter_revisions::version.lt(version));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }
}
