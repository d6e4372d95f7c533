//! [`FallbackChain`]: one [`LanguageModel`] over an ordered list of them (primary first).
//!
//! - Each model is tried in order. An error for which [`LlmError::falls_back`] holds
//!   (429, 5xx, timeouts, protocol and connection errors, an unavailable model) moves to
//!   the next model; any other error (a 400, bad credentials) is returned as it is; when
//!   every model failed, the last error is returned.
//! - A failure before the first delta just switches models. A failure after some text was
//!   streamed neither loses nor repeats it: the next model gets the original messages plus
//!   an `assistant` message with the text so far and a `user` message
//!   ([`CONTINUE_PROMPT`]) asking it to continue exactly there, and its deltas follow —
//!   the output is the partial text + the continuation.
//! - Every model that serves announces itself with `Started(ServedBy { fallback, .. })`
//!   (`fallback` is true for every model but the primary), so a switch is visible in the
//!   stream; the usage the models reported is summed into one `Usage` before `Finished`.
//! - The `force_fallback` switch is read on every request: when it returns true the
//!   primary is skipped (an operator's `LLM_FALLBACK_ENABLED`, flipped without a restart).
//!   With no fallback configured the primary is used anyway.
//! - A [`FallbackObserver`] hears every switch and every model error (metrics).
//! - Dropping the stream drops the current model's stream, which cancels its request.

use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::Arc;
use znovel_domain::ports::{
    ChatMessage, ChatRole, CompletionEvent, CompletionRequest, CompletionStream, LanguageModel,
    LlmError, ServedBy, TokenUsage,
};

/// The `user` message that asks a fallback model to continue a cut-off answer (after an
/// `assistant` message holding the text streamed so far).
pub const CONTINUE_PROMPT: &str = "Your previous answer (above) was cut off. Continue it \
    exactly where it stops, from the very next character: do not repeat any of it, do not \
    add a preamble or a comment, output only the continuation.";

/// The operator's switch: when it returns true, requests skip the primary model.
pub type ForceFallback = Arc<dyn Fn() -> bool + Send + Sync>;

/// Hears what a [`FallbackChain`] does, e.g. to count it in metrics. Every method does
/// nothing by default.
pub trait FallbackObserver: Send + Sync + 'static {
    /// The chain switches from `from` to `to` because `from` failed with `reason`.
    fn on_fallback(&self, from: &ServedBy, to: &ServedBy, reason: &LlmError) {
        let _ = (from, to, reason);
    }
    /// The force-fallback switch is on: the request skips `skipped` (the primary) and
    /// goes to `to`.
    fn on_forced(&self, skipped: &ServedBy, to: &ServedBy) {
        let _ = (skipped, to);
    }
    /// A model of `provider` failed with `error` (whether or not the chain falls back).
    fn on_error(&self, provider: &str, error: &LlmError) {
        let _ = (provider, error);
    }
}

/// A [`FallbackObserver`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl FallbackObserver for NoopObserver {}

/// A [`LanguageModel`] that falls back along an ordered list of models (see the module
/// documentation).
#[derive(Clone)]
pub struct FallbackChain {
    models: Arc<[Arc<dyn LanguageModel>]>,
    force_fallback: ForceFallback,
    observer: Arc<dyn FallbackObserver>,
}

impl std::fmt::Debug for FallbackChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let models: Vec<ServedBy> = self.models.iter().map(|m| m.served_by()).collect();
        f.debug_struct("FallbackChain")
            .field("models", &models)
            .finish_non_exhaustive()
    }
}

impl FallbackChain {
    /// A chain over `models` (primary first). With no model, every request fails with
    /// `Unavailable`.
    pub fn new(
        models: Vec<Arc<dyn LanguageModel>>,
        force_fallback: ForceFallback,
        observer: Arc<dyn FallbackObserver>,
    ) -> Self {
        Self {
            models: models.into(),
            force_fallback,
            observer,
        }
    }

    /// A switch that is never on.
    pub fn never_forced() -> ForceFallback {
        Arc::new(|| false)
    }

    /// The models, primary first.
    pub fn models(&self) -> &[Arc<dyn LanguageModel>] {
        &self.models
    }
}

#[async_trait]
impl LanguageModel for FallbackChain {
    fn served_by(&self) -> ServedBy {
        self.models.first().map_or_else(
            || ServedBy {
                provider: "none".into(),
                model: "none".into(),
                fallback: false,
            },
            |primary| primary.served_by(),
        )
    }

    #[tracing::instrument(skip_all, fields(models = self.models.len()))]
    async fn stream(&self, request: CompletionRequest) -> Result<CompletionStream, LlmError> {
        let Some(primary) = self.models.first() else {
            return Err(LlmError::Unavailable(
                "no language model is configured".into(),
            ));
        };
        let mut first = 0;
        if (self.force_fallback)() {
            match self.models.get(1) {
                Some(fallback) => {
                    let (skipped, to) = (primary.served_by(), served_by(fallback.as_ref(), 1));
                    tracing::info!(
                        skipped = %skipped.model, to = %to.model,
                        "fallback forced: skipping the primary model"
                    );
                    self.observer.on_forced(&skipped, &to);
                    first = 1;
                }
                None => tracing::warn!("fallback forced but no fallback model is configured"),
            }
        }
        let mut run = Run {
            models: Arc::clone(&self.models),
            observer: Arc::clone(&self.observer),
            request,
            next: first,
            current: None,
            emitted: String::new(),
            usage: None,
            pending: VecDeque::new(),
            done: false,
        };
        run.open().await?;
        Ok(Box::pin(futures_util::stream::unfold(
            run,
            |mut run| async move {
                let item = run.next_item().await?;
                Some((item, run))
            },
        )))
    }
}

/// `model`'s `ServedBy` as position `index` of the chain.
fn served_by(model: &dyn LanguageModel, index: usize) -> ServedBy {
    ServedBy {
        fallback: index > 0,
        ..model.served_by()
    }
}

/// The model currently streaming.
struct Current {
    index: usize,
    stream: CompletionStream,
    announced: bool,
}

/// One request through the chain.
struct Run {
    models: Arc<[Arc<dyn LanguageModel>]>,
    observer: Arc<dyn FallbackObserver>,
    request: CompletionRequest,
    /// The next model to try.
    next: usize,
    current: Option<Current>,
    /// The text streamed so far (by every model).
    emitted: String,
    usage: Option<TokenUsage>,
    pending: VecDeque<Result<CompletionEvent, LlmError>>,
    done: bool,
}

impl Run {
    /// Opens the next model that accepts the request; the last error when none does.
    async fn open(&mut self) -> Result<(), LlmError> {
        loop {
            let index = self.next;
            let Some(model) = self.models.get(index).cloned() else {
                return Err(LlmError::Unavailable(
                    "no language model left to try".into(),
                ));
            };
            self.next += 1;
            match model.stream(self.attempt_request()).await {
                Ok(stream) => {
                    self.current = Some(Current {
                        index,
                        stream,
                        announced: false,
                    });
                    return Ok(());
                }
                Err(error) => self.fail_over(index, error)?,
            }
        }
    }

    /// The original request, or — when text was streamed already — the request to
    /// continue it.
    fn attempt_request(&self) -> CompletionRequest {
        let mut request = self.request.clone();
        if !self.emitted.is_empty() {
            request
                .messages
                .push(ChatMessage::new(ChatRole::Assistant, self.emitted.clone()));
            request
                .messages
                .push(ChatMessage::new(ChatRole::User, CONTINUE_PROMPT));
        }
        request
    }

    /// Reports `error` of model `index`; `Ok` when the next model should be tried.
    fn fail_over(&mut self, index: usize, error: LlmError) -> Result<(), LlmError> {
        let failed = served_by(self.models[index].as_ref(), index);
        self.observer.on_error(&failed.provider, &error);
        let next = self.models.get(self.next);
        match next {
            Some(next) if error.falls_back() => {
                let to = served_by(next.as_ref(), self.next);
                tracing::warn!(
                    from = %failed.model, to = %to.model, %error,
                    streamed_chars = self.emitted.chars().count(),
                    "language model failed, falling back"
                );
                self.observer.on_fallback(&failed, &to, &error);
                Ok(())
            }
            _ => {
                tracing::warn!(model = %failed.model, %error, "language model failed");
                Err(error)
            }
        }
    }

    async fn next_item(&mut self) -> Option<Result<CompletionEvent, LlmError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            let Some(current) = self.current.as_mut() else {
                if let Err(error) = self.open().await {
                    self.done = true;
                    return Some(Err(error));
                }
                continue;
            };
            let index = current.index;
            let item = current.stream.next().await;
            if !current.announced {
                current.announced = true;
                let started = served_by(self.models[index].as_ref(), index);
                match item {
                    Some(Ok(CompletionEvent::Started(by))) => {
                        return Some(Ok(CompletionEvent::Started(ServedBy {
                            fallback: index > 0,
                            ..by
                        })));
                    }
                    _ => self
                        .pending
                        .push_back(Ok(CompletionEvent::Started(started))),
                }
            }
            let error = match item {
                Some(Ok(CompletionEvent::Delta(text))) => {
                    self.emitted.push_str(&text);
                    self.pending.push_back(Ok(CompletionEvent::Delta(text)));
                    continue;
                }
                Some(Ok(CompletionEvent::Usage(usage))) => {
                    let total = self.usage.get_or_insert_with(TokenUsage::default);
                    total.prompt_tokens += usage.prompt_tokens;
                    total.completion_tokens += usage.completion_tokens;
                    continue;
                }
                Some(Ok(CompletionEvent::Started(_))) => continue,
                Some(Ok(CompletionEvent::Finished(reason))) => {
                    self.current = None;
                    self.done = true;
                    if let Some(usage) = self.usage {
                        self.pending.push_back(Ok(CompletionEvent::Usage(usage)));
                    }
                    self.pending
                        .push_back(Ok(CompletionEvent::Finished(reason)));
                    continue;
                }
                Some(Err(error)) => error,
                None => LlmError::Protocol("the model's stream ended without finishing".into()),
            };
            self.current = None;
            if let Err(error) = self.fail_over(index, error) {
                self.done = true;
                return Some(Err(error));
            }
        }
    }
}
