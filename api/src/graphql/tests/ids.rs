//! Global IDs, cursors and the domain-error mapping.

use crate::graphql::errors::to_gql;
use crate::graphql::ids::{self, decode, decode_cursor, encode_cursor, to_id};
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use znovel_domain::Error;
use znovel_domain::ids::{ChapterId, NovelId};

#[test]
fn global_ids_round_trip_and_name_their_type() {
    let novel = NovelId::new();
    let id = to_id(novel);
    let raw = URL_SAFE_NO_PAD.decode(id.as_str()).unwrap();
    assert_eq!(String::from_utf8(raw).unwrap(), format!("Novel:{novel}"));
    assert_eq!(decode::<NovelId>(&id, "id").unwrap(), novel);
    assert_eq!(ids::parse(id.as_str()), Some(("Novel", novel.as_uuid())));
    assert!(!id.as_str().contains('='), "no padding");
}

#[test]
fn malformed_or_wrong_type_ids_are_bad_user_input_naming_the_argument() {
    let chapter = to_id(ChapterId::new());
    let uuid = NovelId::new().as_uuid();
    let bad = [
        ID("".into()),
        ID("not base64 !".into()),
        ID(URL_SAFE_NO_PAD.encode("Novel")),
        ID(URL_SAFE_NO_PAD.encode("Novel:not-a-uuid")),
        ID(URL_SAFE_NO_PAD.encode(format!("Nope:{uuid}"))),
        ID(format!(
            "{}=",
            URL_SAFE_NO_PAD.encode(format!("Novel:{uuid}"))
        )),
        ID(uuid.to_string()),
        chapter,
    ];
    for id in bad {
        let err = decode::<NovelId>(&id, "novelId").unwrap_err();
        let ext = err.extensions.as_ref().unwrap();
        assert_eq!(ext.get("code"), Some(&"BAD_USER_INPUT".into()), "{id:?}");
        assert_eq!(ext.get("field"), Some(&"novelId".into()), "{id:?}");
        assert_eq!(err.message, "invalid novelId: not a valid Novel ID");
    }
}

#[test]
fn cursors_round_trip_and_garbage_is_rejected() {
    let uuid = NovelId::new().as_uuid();
    assert_eq!(decode_cursor(&encode_cursor(uuid), "after").unwrap(), uuid);
    for bad in ["", "%%", "AAAA", &to_id(NovelId::new()).0] {
        let err = decode_cursor(bad, "after").unwrap_err();
        let ext = err.extensions.unwrap();
        assert_eq!(ext.get("code"), Some(&"BAD_USER_INPUT".into()));
        assert_eq!(ext.get("field"), Some(&"after".into()));
    }
}

#[test]
fn every_domain_error_maps_to_a_stable_code() {
    let cases = [
        (
            Error::Unauthenticated,
            "UNAUTHENTICATED",
            None,
            "authentication required",
        ),
        (
            Error::Forbidden("no".into()),
            "FORBIDDEN",
            None,
            "forbidden: no",
        ),
        (
            Error::NotFound { resource: "novel" },
            "NOT_FOUND",
            None,
            "novel not found",
        ),
        (
            Error::invalid("title", "too long"),
            "BAD_USER_INPUT",
            Some("title"),
            "invalid title: too long",
        ),
        (
            Error::Conflict("seq taken".into()),
            "CONFLICT",
            None,
            "conflict: seq taken",
        ),
        (
            Error::QuotaExceeded("100 novels".into()),
            "QUOTA_EXCEEDED",
            None,
            "quota exceeded: 100 novels",
        ),
        (
            Error::Unavailable("pg down at 10.0.0.1".into()),
            "UNAVAILABLE",
            None,
            "the service is temporarily unavailable; retry later",
        ),
        (
            Error::Internal("secret detail".into()),
            "INTERNAL",
            None,
            "internal error",
        ),
    ];
    for (error, code, field, message) in cases {
        let e = to_gql(error);
        let ext = e.extensions.unwrap();
        assert_eq!(ext.get("code"), Some(&code.into()));
        assert_eq!(ext.get("field"), field.map(Into::into).as_ref());
        assert_eq!(e.message, message);
    }
}
