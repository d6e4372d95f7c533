//! One `data:` payload of a chat-completions stream, parsed and checked.
//!
//! A chunk is `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":
//! "…"},"finish_reason":null}],"usage":null}`; the usage chunk has `choices: []` and a
//! `usage` object. Tolerated variations seen in compatible servers: no `object` or an
//! empty one (Azure's first chunk), `reasoning_content` deltas (DeepSeek, Qwen: a sign of
//! life, not text), `usage` on several chunks (the last one wins), an empty
//! `finish_reason`. Anything else — not JSON, another `object`, neither `choices` nor
//! `usage`, an `error` object in the stream — is a protocol error.

use serde::Deserialize;
use znovel_domain::ports::{FinishReason, LlmError, TokenUsage};

use super::error_message;

/// The `object` of a streamed chunk.
const CHUNK_OBJECT: &str = "chat.completion.chunk";

#[derive(Deserialize)]
struct RawChunk {
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    choices: Option<Vec<RawChoice>>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<RawDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
}

/// What one chunk says (about choice 0).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Chunk {
    /// New text (`None` when empty or absent).
    pub text: Option<String>,
    /// The model generated something (text or reasoning).
    pub generated: bool,
    /// The choice ended.
    pub finish: Option<FinishReason>,
    /// Token usage.
    pub usage: Option<TokenUsage>,
}

/// Parses one `data:` payload.
pub(super) fn parse(data: &str) -> Result<Chunk, LlmError> {
    let raw: RawChunk = serde_json::from_str(data)
        .map_err(|e| LlmError::Protocol(format!("a stream event is not a JSON chunk: {e}")))?;
    if let Some(error) = raw.error {
        let message = error_message(&serde_json::json!({ "error": error }).to_string());
        return Err(LlmError::Protocol(format!(
            "the provider sent an error in the stream: {message}"
        )));
    }
    match raw.object.as_deref() {
        None | Some("") | Some(CHUNK_OBJECT) => {}
        Some(other) => {
            return Err(LlmError::Protocol(format!(
                "expected a {CHUNK_OBJECT} event, got object {other:?}"
            )));
        }
    }
    if raw.choices.is_none() && raw.usage.is_none() {
        return Err(LlmError::Protocol(format!(
            "a stream event is not a {CHUNK_OBJECT} (no choices, no usage)"
        )));
    }
    let mut chunk = Chunk {
        usage: raw.usage.map(|u| TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }),
        ..Chunk::default()
    };
    let choice = raw.choices.into_iter().flatten().find(|c| c.index == 0);
    if let Some(choice) = choice {
        if let Some(delta) = choice.delta {
            let reasoning = delta.reasoning_content.is_some_and(|r| !r.is_empty());
            chunk.text = delta.content.filter(|t| !t.is_empty());
            chunk.generated = reasoning || chunk.text.is_some();
        }
        chunk.finish = choice
            .finish_reason
            .filter(|r| !r.is_empty())
            .map(|r| match r.as_str() {
                "stop" => FinishReason::Stop,
                "length" => FinishReason::Length,
                _ => FinishReason::Other(r),
            });
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(choices: &str) -> String {
        format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":{choices},"usage":null}}"#
        )
    }

    #[test]
    fn deltas_roles_finish_and_usage() {
        let role = parse(&chunk(
            r#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#,
        ))
        .unwrap();
        assert_eq!(role, Chunk::default());
        let text = parse(&chunk(
            r#"[{"index":0,"delta":{"content":"你好"},"finish_reason":null}]"#,
        ))
        .unwrap();
        assert_eq!(text.text.as_deref(), Some("你好"));
        assert!(text.generated);
        let end = parse(&chunk(
            r#"[{"index":0,"delta":{},"finish_reason":"length"}]"#,
        ))
        .unwrap();
        assert_eq!(end.finish, Some(FinishReason::Length));
        let other = parse(&chunk(
            r#"[{"index":0,"delta":{},"finish_reason":"content_filter"}]"#,
        ))
        .unwrap();
        assert_eq!(
            other.finish,
            Some(FinishReason::Other("content_filter".into()))
        );
        let usage = parse(r#"{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#).unwrap();
        assert_eq!(
            usage.usage,
            Some(TokenUsage {
                prompt_tokens: 5,
                completion_tokens: 3
            })
        );
        let reasoning = parse(&chunk(
            r#"[{"index":0,"delta":{"reasoning_content":"hmm"}}]"#,
        ))
        .unwrap();
        assert!(reasoning.generated && reasoning.text.is_none());
    }

    #[test]
    fn protocol_errors() {
        for bad in [
            "not json",
            "[1,2]",
            "{}",
            r#"{"object":"chat.completion","choices":[]}"#,
            r#"{"error":{"message":"overloaded"}}"#,
        ] {
            assert!(matches!(parse(bad), Err(LlmError::Protocol(_))), "{bad}");
        }
    }
}
