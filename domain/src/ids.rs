//! Typed identifiers. Every id is a UUID v7 (time-ordered, so keyset pagination by id
//! follows creation order), wrapped in a newtype so a `NovelId` can never be passed where
//! a `ChapterId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUID v7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Wraps a UUID read from storage or decoded from a global ID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    )*};
}

id_type! {
    /// Identifies a tenant: the isolation boundary of all data.
    TenantId;
    /// Identifies a user of a tenant.
    UserId;
    /// Identifies an API key.
    ApiKeyId;
    /// Identifies a novel.
    NovelId;
    /// Identifies a volume of a novel.
    VolumeId;
    /// Identifies a chapter.
    ChapterId;
    /// Identifies one stored revision of a chapter's content.
    RevisionId;
    /// Identifies a story-bible entity (character, location, ...).
    EntityId;
    /// Identifies one entry of an entity's state history.
    EntityStateId;
    /// Identifies a relation between two entities.
    RelationId;
    /// Identifies a timeline event.
    EventId;
    /// Identifies a foreshadowing thread.
    ForeshadowingId;
    /// Identifies a generation job.
    JobId;
    /// Identifies an audit-log entry.
    AuditId;
    /// Identifies a stored file (an uploaded manuscript or an exported book).
    FileId;
}
