//! Relay connections over the domain's keyset pages.
//!
//! Every list field takes `first: Int` (1..=100, default 20; checked by the domain's
//! `PageRequest`) and `after: String` (a cursor from a previous page) and returns a
//! `XConnection { pageInfo edges { cursor node } }`. The connection types are declared
//! per node type by [`connection!`] so each carries its own documentation; `PageInfo` is
//! async-graphql's (documented and `@shareable` for federation).
//!
//! Paging is forward only: `hasPreviousPage` is true exactly when `after` was given.
//!
//! Complexity: a list field costs `min(first, 100) × (its selection's complexity)`, see
//! [`cost`], so nested lists multiply.

use super::errors::ResultExt;
use super::ids;
use znovel_domain::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest};

pub use async_graphql::connection::PageInfo;

/// Validates `first`/`after` into a domain page request. A malformed cursor is
/// `BAD_USER_INPUT` on `after`; an out-of-range `first` is the domain's `BAD_USER_INPUT`.
pub fn page_request(first: Option<i32>, after: Option<&str>) -> async_graphql::Result<PageRequest> {
    let after = after.map(|c| ids::decode_cursor(c, "after")).transpose()?;
    PageRequest::new(first.map(i64::from), after).gql()
}

/// The complexity of a list field: the requested page size (clamped to the allowed
/// range, default 20) times the complexity of what is selected on it.
pub fn cost(first: Option<i32>, child_complexity: usize) -> usize {
    let n = first
        .map(|n| usize::try_from(n.max(1)).unwrap_or(1).min(MAX_PAGE_SIZE))
        .unwrap_or(DEFAULT_PAGE_SIZE);
    n.saturating_mul(child_complexity.max(1))
}

/// The page info of a page read with `req` whose items have the given ids.
pub fn page_info(
    req: &PageRequest,
    has_next_page: bool,
    first: Option<uuid::Uuid>,
    last: Option<uuid::Uuid>,
) -> PageInfo {
    PageInfo {
        has_previous_page: req.after().is_some(),
        has_next_page,
        start_cursor: first.map(ids::encode_cursor),
        end_cursor: last.map(ids::encode_cursor),
    }
}

/// Declares `$conn` (a page of `$node`) and `$edge` (one `$node` with its cursor), and
/// `$conn::new(page, &req)` building it from a domain page of `$model` items, each
/// wrapped with `$node(item)` and keyed by `item.id`.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident, $model:ty, $conn_doc:tt, $edge_doc:tt) => {
        #[doc = $conn_doc]
        #[derive(async_graphql::SimpleObject)]
        pub struct $conn {
            /// Where this page is in the list and how to get the next one.
            pub page_info: $crate::graphql::connection::PageInfo,
            /// The items of this page, in list order, each with its cursor.
            pub edges: Vec<$edge>,
        }

        #[doc = $edge_doc]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// Opaque position of this item; pass it as `after` to get the items after it.
            pub cursor: String,
            /// The item.
            pub node: $node,
        }

        impl $conn {
            /// Builds the connection of a domain page read with `req`.
            pub fn new(
                page: znovel_domain::page::Page<$model>,
                req: &znovel_domain::page::PageRequest,
            ) -> Self {
                let first = page.items.first().map(|i| i.id.as_uuid());
                let last = page.items.last().map(|i| i.id.as_uuid());
                let page_info =
                    $crate::graphql::connection::page_info(req, page.has_next_page, first, last);
                let edges = page
                    .items
                    .into_iter()
                    .map(|item| $edge {
                        cursor: $crate::graphql::ids::encode_cursor(item.id.as_uuid()),
                        node: $node(item),
                    })
                    .collect();
                Self { page_info, edges }
            }
        }
    };
}

pub(crate) use connection;
