//! Keyset pagination. Lists are ordered by a stable key (creation order via the UUID v7
//! id, or `seq` for chapters and volumes); `after` is the id of the last item seen, so a
//! page never skips or repeats rows when others are inserted meanwhile.

use crate::Error;
use uuid::Uuid;

/// Page size used when the client does not ask for one.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 100;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    first: usize,
    after: Option<Uuid>,
}

impl PageRequest {
    /// Validates `first` (1..=[`MAX_PAGE_SIZE`], default [`DEFAULT_PAGE_SIZE`]).
    pub fn new(first: Option<i64>, after: Option<Uuid>) -> Result<Self, Error> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n >= 1 && n <= MAX_PAGE_SIZE as i64 => n as usize,
            Some(n) => {
                return Err(Error::invalid(
                    "first",
                    format!("must be between 1 and {MAX_PAGE_SIZE}, got {n}"),
                ));
            }
        };
        Ok(Self { first, after })
    }

    /// The first page of the default size.
    pub fn first_page() -> Self {
        Self {
            first: DEFAULT_PAGE_SIZE,
            after: None,
        }
    }

    /// How many items the page holds at most.
    pub fn first(&self) -> usize {
        self.first
    }

    /// The id of the last item of the previous page, if any.
    pub fn after(&self) -> Option<Uuid> {
        self.after
    }

    /// How many rows an adapter should fetch: one more than the page, to know whether a
    /// next page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.first as i64 + 1
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Whether more items follow the last one.
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with [`PageRequest::fetch_limit`].
    pub fn from_rows(mut rows: Vec<T>, req: &PageRequest) -> Self {
        let has_next_page = rows.len() > req.first;
        rows.truncate(req.first);
        Self {
            items: rows,
            has_next_page,
        }
    }

    /// Transforms every item.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
        }
    }
}
