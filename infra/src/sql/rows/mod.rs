//! Diesel row structs (one per table the ports use) and their conversions: `From<&Model>`
//! to write, `TryFrom<Row>` to read — a value the domain cannot represent (an unknown
//! enum string, a malformed JSON array) becomes `StoreError::Internal`.

mod admin;
mod jobs;
mod memory;
mod story;

pub use admin::*;
pub use jobs::*;
pub use memory::*;
pub use story::*;

use super::error::corrupt;
use super::types::{DbUuid, opt_db};
use serde_json::Value;
use znovel_domain::StoreError;
use znovel_domain::ids::ChapterId;
use znovel_domain::model::{Origin, Provenance};

/// The provenance columns of a bible row: origin, origin_chapter_id, span_start, span_end.
pub type ProvenanceCols = (String, Option<DbUuid>, Option<i32>, Option<i32>);

/// A provenance as its columns.
pub fn provenance_cols(p: &Provenance) -> ProvenanceCols {
    (
        p.origin.as_str().to_owned(),
        opt_db(p.chapter_id),
        p.span_start,
        p.span_end,
    )
}

/// Reads the provenance columns.
pub fn provenance(
    origin: &str,
    chapter: Option<DbUuid>,
    span_start: Option<i32>,
    span_end: Option<i32>,
) -> Result<Provenance, StoreError> {
    Ok(Provenance {
        origin: enum_from("origin", origin, Origin::parse)?,
        chapter_id: chapter.map(|c| ChapterId::from_uuid(c.0)),
        span_start,
        span_end,
    })
}

/// Parses a stored enum name with the enum's `parse`.
pub fn enum_from<E>(what: &str, text: &str, parse: fn(&str) -> Option<E>) -> Result<E, StoreError> {
    parse(text).ok_or_else(|| corrupt(what, format!("unknown value {text:?}")))
}

/// A JSON array of strings.
pub fn string_array<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|s| Value::String(s.to_owned()))
            .collect(),
    )
}

/// Reads a JSON array of strings, each turned into `T` by `parse`.
pub fn from_string_array<T>(
    what: &str,
    value: &Value,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, StoreError> {
    let items = value
        .as_array()
        .ok_or_else(|| corrupt(what, "not a JSON array"))?;
    items
        .iter()
        .map(|item| {
            item.as_str()
                .and_then(&parse)
                .ok_or_else(|| corrupt(what, format!("bad element {item}")))
        })
        .collect()
}
