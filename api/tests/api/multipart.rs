//! GraphQL multipart requests (the spec async-graphql's `Upload` follows), built by hand
//! so a test controls every byte. Shared with `benches/books.rs` (`#[path]`).

use serde_json::{Value, json};

/// A multipart request running `query` with `$i = input`, whose `file` is the upload:
/// `bytes` named `name`, sent as `content_type`. Returns the request's `Content-Type`
/// header (with its boundary) and its body.
pub fn request(
    query: &str,
    mut input: Value,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!("znovel-{}", uuid::Uuid::new_v4().simple());
    input["file"] = Value::Null;
    let operations = json!({ "query": query, "variables": { "i": input } });
    let map = json!({ "0": ["variables.i.file"] });
    let mut body = Vec::new();
    for (field, value) in [
        ("operations", operations.to_string()),
        ("map", map.to_string()),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
