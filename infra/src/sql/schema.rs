//! The one diesel schema both backends share. Column types are portable: [`SqlUuid`],
//! [`SqlTimestamp`] and [`SqlJson`] map to `uuid`, `timestamptz` and `jsonb` on PostgreSQL
//! and to TEXT on SQLite (see [`super::types`]). It mirrors `migrations/*/…_init/up.sql`.

#![allow(missing_docs)]

use super::types::{SqlJson, SqlTimestamp, SqlUuid};

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    tenants (id) {
        id -> SqlUuid,
        name -> Text,
        slug -> Text,
        status -> Text,
        max_novels -> BigInt,
        max_chapters_per_novel -> BigInt,
        max_tokens_per_day -> BigInt,
        settings -> SqlJson,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
        max_file_bytes -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    users (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        email -> Text,
        display_name -> Text,
        role -> Text,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    api_keys (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        user_id -> SqlUuid,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        scopes -> SqlJson,
        created_at -> SqlTimestamp,
        last_used_at -> Nullable<SqlTimestamp>,
        revoked_at -> Nullable<SqlTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    novels (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        title -> Text,
        description -> Text,
        genre -> Text,
        language -> Text,
        target_word_count -> Nullable<BigInt>,
        style_guide -> Text,
        world_settings -> SqlJson,
        time_system -> Text,
        status -> Text,
        word_count -> BigInt,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    volumes (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        seq -> Integer,
        title -> Text,
        summary -> Text,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    chapters (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        volume_id -> Nullable<SqlUuid>,
        seq -> Integer,
        title -> Text,
        outline -> Text,
        content -> Text,
        summary -> Text,
        summary_origin -> Text,
        story_time_start -> Nullable<BigInt>,
        story_time_end -> Nullable<BigInt>,
        word_count -> BigInt,
        target_word_count -> Nullable<BigInt>,
        status -> Text,
        version -> Integer,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    chapter_revisions (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        chapter_id -> SqlUuid,
        version -> Integer,
        content -> Text,
        word_count -> BigInt,
        source -> Text,
        created_by -> Nullable<SqlUuid>,
        job_id -> Nullable<SqlUuid>,
        note -> Text,
        created_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    entities (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        name -> Text,
        aliases -> SqlJson,
        kind -> Text,
        description -> Text,
        attributes -> SqlJson,
        importance -> Integer,
        current_state -> Text,
        first_chapter_seq -> Nullable<Integer>,
        last_chapter_seq -> Nullable<Integer>,
        appearance_count -> Integer,
        origin -> Text,
        origin_chapter_id -> Nullable<SqlUuid>,
        span_start -> Nullable<Integer>,
        span_end -> Nullable<Integer>,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    entity_states (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        entity_id -> SqlUuid,
        chapter_id -> Nullable<SqlUuid>,
        story_time -> Nullable<BigInt>,
        state -> Text,
        attribute_changes -> SqlJson,
        vital -> Nullable<Text>,
        location_id -> Nullable<SqlUuid>,
        holder_id -> Nullable<SqlUuid>,
        lost -> Bool,
        injuries -> SqlJson,
        origin -> Text,
        origin_chapter_id -> Nullable<SqlUuid>,
        span_start -> Nullable<Integer>,
        span_end -> Nullable<Integer>,
        created_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    relations (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        source_id -> SqlUuid,
        target_id -> SqlUuid,
        kind -> Text,
        strength -> Double,
        description -> Text,
        since_chapter_id -> Nullable<SqlUuid>,
        origin -> Text,
        origin_chapter_id -> Nullable<SqlUuid>,
        span_start -> Nullable<Integer>,
        span_end -> Nullable<Integer>,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    events (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        chapter_id -> Nullable<SqlUuid>,
        title -> Text,
        summary -> Text,
        story_time_start -> BigInt,
        story_time_end -> Nullable<BigInt>,
        location_id -> Nullable<SqlUuid>,
        involved -> SqlJson,
        importance -> Integer,
        origin -> Text,
        origin_chapter_id -> Nullable<SqlUuid>,
        span_start -> Nullable<Integer>,
        span_end -> Nullable<Integer>,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    foreshadowing (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        title -> Text,
        description -> Text,
        planted_chapter_id -> Nullable<SqlUuid>,
        expected_payoff -> Text,
        resolved_chapter_id -> Nullable<SqlUuid>,
        status -> Text,
        origin -> Text,
        origin_chapter_id -> Nullable<SqlUuid>,
        span_start -> Nullable<Integer>,
        span_end -> Nullable<Integer>,
        created_at -> SqlTimestamp,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    generation_jobs (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        chapter_id -> Nullable<SqlUuid>,
        kind -> Text,
        status -> Text,
        priority -> Integer,
        input -> SqlJson,
        idempotency_key -> Nullable<Text>,
        provider -> Nullable<Text>,
        model -> Nullable<Text>,
        fallback_used -> Bool,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        queued_at -> SqlTimestamp,
        started_at -> Nullable<SqlTimestamp>,
        first_token_at -> Nullable<SqlTimestamp>,
        finished_at -> Nullable<SqlTimestamp>,
        attempts -> Integer,
        error -> Nullable<Text>,
        result -> Nullable<SqlJson>,
        created_by -> Nullable<SqlUuid>,
        context -> SqlJson,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    validation_reports (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        chapter_id -> SqlUuid,
        revision_id -> Nullable<SqlUuid>,
        issues -> SqlJson,
        passed -> Bool,
        created_at -> SqlTimestamp,
        chapter_version -> Nullable<Integer>,
        complete -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    files (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        job_id -> Nullable<SqlUuid>,
        name -> Text,
        content_type -> Text,
        size -> BigInt,
        content -> Binary,
        created_by -> Nullable<SqlUuid>,
        created_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlJson, SqlTimestamp, SqlUuid};

    audit_logs (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        actor_user_id -> Nullable<SqlUuid>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Text,
        request_id -> Nullable<Text>,
        detail -> SqlJson,
        created_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    usage_records (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        day -> Date,
        model -> Text,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    chapter_memory (chapter_id) {
        chapter_id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        indexed_version -> Nullable<Integer>,
        extracted_version -> Nullable<Integer>,
        failed_version -> Nullable<Integer>,
        error -> Nullable<Text>,
        updated_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::SqlUuid;

    entity_appearances (entity_id, chapter_id) {
        tenant_id -> SqlUuid,
        entity_id -> SqlUuid,
        chapter_id -> SqlUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{SqlTimestamp, SqlUuid};

    memory_records (id) {
        id -> SqlUuid,
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        kind -> Text,
        source_id -> SqlUuid,
        ordinal -> Integer,
        chapter_id -> Nullable<SqlUuid>,
        chapter_seq -> Nullable<Integer>,
        chapter_version -> Nullable<Integer>,
        text -> Text,
        start_offset -> Nullable<Integer>,
        end_offset -> Nullable<Integer>,
        keywords -> Text,
        model -> Nullable<Text>,
        vector -> Nullable<Binary>,
        created_at -> SqlTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::SqlUuid;

    memory_versions (tenant_id, novel_id) {
        tenant_id -> SqlUuid,
        novel_id -> SqlUuid,
        version -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::SqlTimestamp;

    trusted_documents (sha256) {
        sha256 -> Text,
        document -> Text,
        operation_name -> Nullable<Text>,
        registered_at -> SqlTimestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    users,
    api_keys,
    novels,
    volumes,
    chapters,
    chapter_revisions,
    entities,
    entity_states,
    relations,
    events,
    foreshadowing,
    generation_jobs,
    validation_reports,
    chapter_memory,
    entity_appearances,
    memory_records,
    memory_versions,
    audit_logs,
    usage_records,
    trusted_documents,
    files,
);
