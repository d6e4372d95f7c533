//! Shared helpers of the `llm_*` tests: the fake provider's configuration, a request, and
//! a collector that checks the port's stream contract and never hangs.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use znovel_domain::ports::{
    ChatMessage, ChatRole, CompletionEvent, CompletionRequest, CompletionStream, FinishReason,
    LanguageModel, LlmError, ServedBy, TokenUsage,
};
use znovel_infra::llm::testing::FakeOpenAi;
use znovel_infra::llm::{FallbackObserver, OpenAiConfig};

/// The API key the fake requires.
pub const KEY: &str = "sk-test-0123456789";
/// Connect timeout of the tests.
pub const CONNECT: Duration = Duration::from_millis(500);
/// First-token timeout of the tests.
pub const FIRST_TOKEN: Duration = Duration::from_millis(500);
/// Stall timeout of the tests.
pub const STALL: Duration = Duration::from_millis(400);
/// No test step may take longer.
pub const HANG: Duration = Duration::from_secs(10);

/// A fake provider requiring [`KEY`].
pub async fn fake() -> FakeOpenAi {
    FakeOpenAi::start(Some(KEY)).await.unwrap()
}

/// `model` on `fake` with the test key and short timeouts.
pub fn config(fake: &FakeOpenAi, model: &str) -> OpenAiConfig {
    OpenAiConfig::new(fake.base_url(), model)
        .with_api_key(KEY.to_owned())
        .with_timeouts(CONNECT, FIRST_TOKEN, STALL)
}

/// A chapter-like request.
pub fn request() -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            ChatMessage::new(ChatRole::System, "You are a novelist. 你是一位小说家。"),
            ChatMessage::new(ChatRole::User, "Write chapter 3: the storm."),
        ],
        max_tokens: 256,
        json_schema: None,
        temperature: 0.7,
        seed: Some(42),
    }
}

/// The `(role, content)` pairs of `request`'s messages.
pub fn pairs(request: &CompletionRequest) -> Vec<(String, String)> {
    let role = |r: ChatRole| match r {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
    };
    request
        .messages
        .iter()
        .map(|m| (role(m.role).to_owned(), m.content.clone()))
        .collect()
}

/// Everything a stream gave.
#[derive(Debug)]
pub struct Collected {
    /// The events, in order.
    pub events: Vec<CompletionEvent>,
    /// The error that ended it, if any.
    pub error: Option<LlmError>,
}

impl Collected {
    /// The deltas, concatenated.
    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                CompletionEvent::Delta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }
    /// The deltas.
    pub fn deltas(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CompletionEvent::Delta(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }
    /// Every `Started`.
    pub fn started(&self) -> Vec<ServedBy> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CompletionEvent::Started(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
    /// The `Usage`, if any.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.events.iter().find_map(|e| match e {
            CompletionEvent::Usage(u) => Some(*u),
            _ => None,
        })
    }
    /// The `Finished` reason, if any.
    pub fn finished(&self) -> Option<FinishReason> {
        self.events.iter().find_map(|e| match e {
            CompletionEvent::Finished(r) => Some(r.clone()),
            _ => None,
        })
    }
}

/// Reads `stream` to its end (failing the test if that takes [`HANG`]) and checks the
/// contract: `Started` first, at most one `Usage`, `Finished` last (or an error last),
/// nothing after the end.
pub async fn collect(mut stream: CompletionStream) -> Collected {
    use futures_util::StreamExt;
    let read = async {
        let mut events = Vec::new();
        let mut error = None;
        while let Some(item) = stream.next().await {
            assert!(error.is_none(), "an item after an error: {item:?}");
            assert!(
                !matches!(events.last(), Some(CompletionEvent::Finished(_))),
                "an item after Finished: {item:?}"
            );
            match item {
                Ok(event) => events.push(event),
                Err(e) => error = Some(e),
            }
        }
        Collected { events, error }
    };
    let collected = tokio::time::timeout(HANG, read)
        .await
        .expect("the stream hung");
    assert!(
        matches!(collected.events.first(), Some(CompletionEvent::Started(_))),
        "first event is not Started: {collected:?}"
    );
    let usages = collected
        .events
        .iter()
        .filter(|e| matches!(e, CompletionEvent::Usage(_)))
        .count();
    assert!(usages <= 1, "{usages} Usage events");
    if collected.error.is_none() {
        assert!(
            matches!(collected.events.last(), Some(CompletionEvent::Finished(_))),
            "no Finished at the end: {collected:?}"
        );
    }
    collected
}

/// Starts a completion on `model` and reads it (the `Err` of `stream` as is).
pub async fn run(
    model: &dyn LanguageModel,
    request: CompletionRequest,
) -> Result<Collected, LlmError> {
    let stream = tokio::time::timeout(HANG, model.stream(request))
        .await
        .expect("stream() hung")?;
    Ok(collect(stream).await)
}

/// Records what a fallback chain reports.
#[derive(Default)]
pub struct RecordingObserver {
    /// `from → to: reason` of every fallback.
    pub fallbacks: Mutex<Vec<(String, String, LlmError)>>,
    /// `skipped → to` of every forced fallback.
    pub forced: Mutex<Vec<(String, String)>>,
    /// `(provider, error)` of every model error.
    pub errors: Mutex<Vec<(String, LlmError)>>,
}

impl RecordingObserver {
    /// A new observer.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// The fallbacks so far.
    pub fn fallbacks(&self) -> Vec<(String, String, LlmError)> {
        self.fallbacks.lock().unwrap().clone()
    }
    /// The errors so far.
    pub fn errors(&self) -> Vec<(String, LlmError)> {
        self.errors.lock().unwrap().clone()
    }
    /// The forced fallbacks so far.
    pub fn forced(&self) -> Vec<(String, String)> {
        self.forced.lock().unwrap().clone()
    }
}

impl FallbackObserver for RecordingObserver {
    fn on_fallback(&self, from: &ServedBy, to: &ServedBy, reason: &LlmError) {
        assert!(
            to.fallback,
            "switching to a model not marked fallback: {to:?}"
        );
        self.fallbacks
            .lock()
            .unwrap()
            .push((from.model.clone(), to.model.clone(), reason.clone()));
    }
    fn on_forced(&self, skipped: &ServedBy, to: &ServedBy) {
        self.forced
            .lock()
            .unwrap()
            .push((skipped.model.clone(), to.model.clone()));
    }
    fn on_error(&self, provider: &str, error: &LlmError) {
        self.errors
            .lock()
            .unwrap()
            .push((provider.to_owned(), error.clone()));
    }
}
