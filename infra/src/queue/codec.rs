//! Wire forms shared by the adapters: a token-stream entry is its [`StreamEvent`] as JSON
//! (serde's externally tagged form, `{"Chunk":{...}}` / `{"End":{...}}`); a queue message
//! is the fields `tenant` and `job` (UUIDs).

use uuid::Uuid;
use znovel_domain::ports::{JobMessage, QueueError, StreamEvent};

/// The largest `seq` accepted: Redis scripts compare seqs as doubles.
pub(crate) const MAX_SEQ: u64 = 1 << 53;

/// Encodes an entry.
pub(crate) fn encode_event(event: &StreamEvent) -> Result<String, QueueError> {
    serde_json::to_string(event).map_err(|e| QueueError::Internal(format!("encode entry: {e}")))
}

/// Decodes an entry.
pub(crate) fn decode_event(bytes: &[u8]) -> Result<StreamEvent, QueueError> {
    serde_json::from_slice(bytes)
        .map_err(|e| QueueError::Internal(format!("corrupt token stream entry: {e}")))
}

/// Rejects a `seq` no stream may hold.
pub(crate) fn check_seq(event: &StreamEvent) -> Result<u64, QueueError> {
    match event.seq() {
        0 => Err(QueueError::Internal("token stream seq starts at 1".into())),
        seq if seq > MAX_SEQ => Err(QueueError::Internal(format!("seq {seq} too large"))),
        seq => Ok(seq),
    }
}

/// Field name of a queue message's tenant.
pub(crate) const TENANT: &str = "tenant";
/// Field name of a queue message's job.
pub(crate) const JOB: &str = "job";

/// Decodes a queue message from its fields (name/value pairs).
pub(crate) fn decode_message<'a>(
    mut fields: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<JobMessage, String> {
    let (mut tenant, mut job) = (None, None);
    for (name, value) in fields.by_ref() {
        match name {
            TENANT => tenant = Some(value),
            JOB => job = Some(value),
            _ => {}
        }
    }
    let parse = |name: &str, value: Option<&str>| {
        let value = value.ok_or_else(|| format!("queue entry without {name}"))?;
        Uuid::parse_str(value).map_err(|e| format!("queue entry {name} {value:?}: {e}"))
    };
    Ok(JobMessage {
        tenant_id: parse(TENANT, tenant)?.into(),
        job_id: parse(JOB, job)?.into(),
    })
}
