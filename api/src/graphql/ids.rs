//! Global object IDs and pagination cursors.
//!
//! A global ID is the unpadded base64url encoding of `"<Type>:<uuid>"`, e.g. `Novel:0190…`,
//! so it names its GraphQL type (what `node(id)` dispatches on) and stays opaque to
//! clients. A cursor is the unpadded base64url encoding of the 16 bytes of a row's UUID
//! (the keyset position of the domain's [`PageRequest`](znovel_domain::page::PageRequest)).
//!
//! Decoding failures are `BAD_USER_INPUT` errors that name the offending argument or
//! input field.

use super::errors::to_gql;
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;
use znovel_domain::Error;
use znovel_domain::ids::*;

/// A domain identifier that has a global GraphQL ID: it knows its GraphQL type name.
pub trait GlobalId: Copy {
    /// The GraphQL type name the ID is prefixed with.
    const TYPE: &'static str;
    /// Wraps a decoded UUID.
    fn from_uuid(uuid: Uuid) -> Self;
    /// The underlying UUID.
    fn uuid(self) -> Uuid;
}

macro_rules! global_ids {
    ($($id:ty => $name:literal,)*) => {
        $(impl GlobalId for $id {
            const TYPE: &'static str = $name;
            fn from_uuid(uuid: Uuid) -> Self {
                <$id>::from_uuid(uuid)
            }
            fn uuid(self) -> Uuid {
                self.as_uuid()
            }
        })*

        /// Every GraphQL type name a global ID may carry.
        pub const TYPES: &[&str] = &[$($name),*];
    };
}

global_ids! {
    TenantId => "Tenant",
    UserId => "User",
    ApiKeyId => "ApiKey",
    AuditId => "AuditEntry",
    NovelId => "Novel",
    VolumeId => "Volume",
    ChapterId => "Chapter",
    RevisionId => "ChapterRevision",
    EntityId => "Entity",
    EntityStateId => "EntityState",
    RelationId => "Relation",
    EventId => "Event",
    ForeshadowingId => "Foreshadowing",
    JobId => "GenerationJob",
    FileId => "StoredFile",
}

/// Encodes `"<type_name>:<uuid>"` as a global ID string.
pub fn encode_raw(type_name: &str, uuid: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{type_name}:{}", uuid.hyphenated()))
}

/// The global ID of a domain identifier.
pub fn to_id<T: GlobalId>(id: T) -> ID {
    ID(encode_raw(T::TYPE, id.uuid()))
}

/// The global ID of an optional domain identifier.
pub fn opt_id<T: GlobalId>(id: Option<T>) -> Option<ID> {
    id.map(to_id)
}

/// Splits a global ID into its type name and UUID; `None` when it is not one (bad
/// base64, no `:`, a type name we do not know, or a bad UUID).
pub fn parse(id: &str) -> Option<(&'static str, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(id.as_bytes()).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (type_name, uuid) = text.split_once(':')?;
    let known = TYPES.iter().copied().find(|t| *t == type_name)?;
    let uuid = Uuid::try_parse(uuid).ok()?;
    Some((known, uuid))
}

/// The domain error for an ID argument or field that is not an ID of the expected type.
pub fn invalid_id(field: &str, type_name: &str) -> Error {
    Error::invalid(field, format!("not a valid {type_name} ID"))
}

/// Decodes a global ID of type `T`, given as argument or input field `field`.
pub fn decode<T: GlobalId>(id: &ID, field: &str) -> async_graphql::Result<T> {
    match parse(id.as_str()) {
        Some((type_name, uuid)) if type_name == T::TYPE => Ok(T::from_uuid(uuid)),
        _ => Err(to_gql(invalid_id(field, T::TYPE))),
    }
}

/// Decodes an optional global ID of type `T`.
pub fn decode_opt<T: GlobalId>(id: Option<&ID>, field: &str) -> async_graphql::Result<Option<T>> {
    id.map(|id| decode(id, field)).transpose()
}

/// Decodes a list of global IDs of type `T`.
pub fn decode_list<T: GlobalId>(ids: &[ID], field: &str) -> async_graphql::Result<Vec<T>> {
    ids.iter().map(|id| decode(id, field)).collect()
}

/// The cursor of a row with id `uuid`.
pub fn encode_cursor(uuid: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(uuid.as_bytes())
}

/// Decodes a cursor given as argument `field`.
pub fn decode_cursor(cursor: &str, field: &str) -> async_graphql::Result<Uuid> {
    URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| to_gql(Error::invalid(field, "not a valid cursor")))
}
