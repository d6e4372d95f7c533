//! Portable SQL types: one diesel type per concept, with the PostgreSQL type where it has
//! a native one and TEXT on SQLite.
//!
//! | SQL type         | PostgreSQL    | SQLite                                            | Rust      |
//! |------------------|---------------|---------------------------------------------------|-----------|
//! | [`SqlUuid`]      | `uuid`        | TEXT, lower-case hyphenated                       | [`DbUuid`]|
//! | [`SqlTimestamp`] | `timestamptz` | TEXT, fixed width `2026-11-24T23:59:59.123456Z`   | [`DbTime`]|
//! | [`SqlJson`]      | `jsonb`       | TEXT                                              | [`DbJson`]|
//!
//! Fixed-width UTC text keeps text order equal to time order on SQLite, and lower-case
//! UUID text sorts like the 16 bytes PostgreSQL compares, so keyset cursors behave alike.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::deserialize::FromSqlRow;
use diesel::deserialize::{self, FromSql};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::query_builder::QueryId;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::SqlType;
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteValue};
use uuid::Uuid;
use znovel_domain::ids::*;

/// A UUID: `uuid` on PostgreSQL, TEXT on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct SqlUuid;

/// A UTC instant with microsecond precision: `timestamptz` on PostgreSQL, fixed-width
/// RFC 3339 TEXT on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct SqlTimestamp;

/// A JSON document: `jsonb` on PostgreSQL, TEXT on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct SqlJson;

/// A UUID value of [`SqlUuid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = SqlUuid)]
pub struct DbUuid(pub Uuid);

/// A timestamp value of [`SqlTimestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = SqlTimestamp)]
pub struct DbTime(pub DateTime<Utc>);

/// A JSON value of [`SqlJson`].
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = SqlJson)]
pub struct DbJson(pub serde_json::Value);

impl ToSql<SqlUuid, Pg> for DbUuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<SqlUuid, Pg> for DbUuid {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(bytes).map(DbUuid)
    }
}

impl ToSql<SqlUuid, Sqlite> for DbUuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<SqlUuid, Sqlite> for DbUuid {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(DbUuid(Uuid::parse_str(&text)?))
    }
}

impl DbTime {
    /// The SQLite text form: RFC 3339 UTC with exactly six fractional digits.
    pub fn to_text(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl ToSql<SqlTimestamp, Pg> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<diesel::sql_types::Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<SqlTimestamp, Pg> for DbTime {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<diesel::sql_types::Timestamptz, Pg>>::from_sql(bytes).map(DbTime)
    }
}

impl ToSql<SqlTimestamp, Sqlite> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_text());
        Ok(IsNull::No)
    }
}

impl FromSql<SqlTimestamp, Sqlite> for DbTime {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(DbTime(
            DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc),
        ))
    }
}

impl ToSql<SqlJson, Pg> for DbJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<diesel::sql_types::Jsonb, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<SqlJson, Pg> for DbJson {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<diesel::sql_types::Jsonb, Pg>>::from_sql(bytes).map(DbJson)
    }
}

impl ToSql<SqlJson, Sqlite> for DbJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(&self.0)?);
        Ok(IsNull::No)
    }
}

impl FromSql<SqlJson, Sqlite> for DbJson {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(DbJson(serde_json::from_str(&text)?))
    }
}

/// Turns a typed domain id (or a bare UUID) into its column value.
pub trait ToDb {
    /// The column value.
    fn db(self) -> DbUuid;
}

impl ToDb for Uuid {
    fn db(self) -> DbUuid {
        DbUuid(self)
    }
}

macro_rules! id_to_db {
    ($($id:ty),* $(,)?) => {$(
        impl ToDb for $id {
            fn db(self) -> DbUuid {
                DbUuid(self.as_uuid())
            }
        }
    )*};
}

id_to_db!(
    TenantId,
    UserId,
    ApiKeyId,
    NovelId,
    VolumeId,
    ChapterId,
    RevisionId,
    EntityId,
    EntityStateId,
    RelationId,
    EventId,
    ForeshadowingId,
    JobId,
    AuditId,
    FileId,
);

impl From<DateTime<Utc>> for DbTime {
    fn from(t: DateTime<Utc>) -> Self {
        DbTime(t)
    }
}

/// Turns an optional typed id into an optional column value.
pub fn opt_db<T: ToDb>(id: Option<T>) -> Option<DbUuid> {
    id.map(ToDb::db)
}
