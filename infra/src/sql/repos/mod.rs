//! The repository ports implemented for [`SqlStore`](super::SqlStore), one file per
//! aggregate. Each file writes its queries once inside `per_backend!` (so they compile
//! for PostgreSQL and SQLite) as functions taking `&mut Conn`, which compose inside
//! transactions, and implements its port by `dispatch!`ing to them.
//!
//! Every tenant-scoped function runs in `tx!(conn, Some(tenant), …)` (PostgreSQL
//! row-level security) AND filters by `tenant_id` itself (defence in depth).

mod api_keys;
mod audit;
mod chapters;
mod entities;
mod events;
mod files;
mod foreshadowing;
mod jobs;
mod memory;
mod novels;
pub(crate) mod records;
mod relations;
mod revisions;
mod tenants;
mod trusted;
mod users;
mod validation;

use super::types::DbUuid;
use znovel_domain::StoreError;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::StoreResult;

/// Converts rows into domain values (failing on a value the domain cannot hold).
pub fn convert<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Turns rows fetched with `page.fetch_limit()` into a page of domain values.
pub fn page_of<R, T>(rows: Vec<R>, page: &PageRequest) -> StoreResult<Page<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    Ok(Page::from_rows(convert(rows)?, page))
}

/// `NotFound` when an UPDATE/DELETE touched no row.
pub fn touched(rows: usize) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The keyset cursor of a page request, as a column value.
pub fn cursor(page: &PageRequest) -> Option<DbUuid> {
    page.after().map(DbUuid)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`, and wraps the
/// lower-cased text in `%…%` (a case-insensitive substring match on lower-cased text).
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_patterns_escape_wildcards_and_fold_case() {
        assert_eq!(contains_pattern("Élodie"), "%élodie%");
        assert_eq!(contains_pattern("100%_\\"), "%100\\%\\_\\\\%");
    }
}
