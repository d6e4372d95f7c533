//! Reading raw replies (`redis::Value`) of stream commands and our scripts: anything not
//! shaped as expected is corrupt data (`Internal`).

use ::redis::Value;
use znovel_domain::ports::QueueError;

fn bad(what: &str, v: &Value) -> QueueError {
    QueueError::Internal(format!("unexpected Redis reply for {what}: {v:?}"))
}

/// An array's items (nil reads as empty).
pub(crate) fn array(v: Value, what: &str) -> Result<Vec<Value>, QueueError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(bad(what, &other)),
    }
}

/// A string's bytes.
pub(crate) fn bytes(v: Value, what: &str) -> Result<Vec<u8>, QueueError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(bad(what, &other)),
    }
}

/// A UTF-8 string.
pub(crate) fn string(v: Value, what: &str) -> Result<String, QueueError> {
    String::from_utf8(bytes(v, what)?)
        .map_err(|_| QueueError::Internal(format!("non-UTF-8 Redis reply for {what}")))
}

/// An integer.
pub(crate) fn int(v: Value, what: &str) -> Result<i64, QueueError> {
    match v {
        Value::Int(n) => Ok(n),
        Value::BulkString(ref b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(what, &v)),
        other => Err(bad(what, &other)),
    }
}

/// A stream entry: its id and its (field, value) pairs.
pub(crate) type Entry = (String, Vec<(String, Vec<u8>)>);

/// One stream entry `[id, [field, value, ...]]`.
pub(crate) fn entry(v: Value, what: &str) -> Result<Entry, QueueError> {
    let mut parts = array(v, what)?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return Err(QueueError::Internal(format!(
            "short stream entry in {what}"
        )));
    };
    let id = string(id, what)?;
    let mut flat = array(fields, what)?.into_iter();
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        pairs.push((string(name, what)?, bytes(value, what)?));
    }
    Ok((id, pairs))
}

/// The entries of an `XREAD`/`XREADGROUP` reply on one stream (nil = none).
pub(crate) fn read_reply(v: Value, what: &str) -> Result<Vec<Value>, QueueError> {
    let mut out = Vec::new();
    if let Value::Map(streams) = v {
        for (_key, entries) in streams {
            out.extend(array(entries, what)?);
        }
        return Ok(out);
    }
    for stream in array(v, what)? {
        let mut parts = array(stream, what)?.into_iter();
        if let (Some(_key), Some(entries)) = (parts.next(), parts.next()) {
            out.extend(array(entries, what)?);
        }
    }
    Ok(out)
}
