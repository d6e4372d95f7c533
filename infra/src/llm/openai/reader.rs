//! Turns an open SSE response into the port's [`CompletionEvent`]s, with the first-token
//! and stall timeouts.
//!
//! The reader owns the [`EventSource`] (and so the HTTP response): when it ends — on
//! `[DONE]`, an error or a timeout — it drops it at once, and dropping the stream drops it
//! too, which closes the connection.

use futures_util::StreamExt;
use reqwest_eventsource::{Error as SseError, Event, EventSource};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use znovel_domain::ports::{
    CompletionEvent, CompletionStream, FinishReason, LlmError, ServedBy, TokenUsage,
};

use super::chunk;

type Item = Result<CompletionEvent, LlmError>;

/// The state of one open completion stream.
pub(super) struct SseReader {
    events: Option<EventSource>,
    pending: VecDeque<Item>,
    first_token_deadline: Instant,
    first_token_timeout: Duration,
    stall_timeout: Duration,
    generated: bool,
    finish: Option<FinishReason>,
    usage: Option<TokenUsage>,
    deltas: usize,
}

/// What waiting for the next SSE event gave.
enum Next {
    Event(Option<Result<Event, SseError>>),
    TimedOut,
}

impl SseReader {
    /// A reader whose first item is `Started(served_by)`.
    pub(super) fn new(
        events: EventSource,
        served_by: ServedBy,
        first_token_deadline: Instant,
        first_token_timeout: Duration,
        stall_timeout: Duration,
    ) -> Self {
        Self {
            events: Some(events),
            pending: VecDeque::from([Ok(CompletionEvent::Started(served_by))]),
            first_token_deadline,
            first_token_timeout,
            stall_timeout,
            generated: false,
            finish: None,
            usage: None,
            deltas: 0,
        }
    }

    /// The port's stream over this reader.
    pub(super) fn into_stream(self) -> CompletionStream {
        Box::pin(futures_util::stream::unfold(
            self,
            |mut reader| async move {
                let item = reader.next_item().await?;
                Some((item, reader))
            },
        ))
    }

    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let events = self.events.as_mut()?;
            let next = if self.generated || self.finish.is_some() {
                tokio::time::timeout(self.stall_timeout, events.next()).await
            } else {
                tokio::time::timeout_at(self.first_token_deadline, events.next()).await
            };
            let next = next.map_or(Next::TimedOut, Next::Event);
            self.handle(next);
        }
    }

    fn handle(&mut self, next: Next) {
        match next {
            Next::TimedOut if self.finish.is_some() => self.end(),
            Next::TimedOut if self.generated => {
                self.fail(LlmError::StallTimeout(self.stall_timeout));
            }
            Next::TimedOut => self.fail(LlmError::FirstTokenTimeout(self.first_token_timeout)),
            Next::Event(Some(Ok(Event::Open))) => {}
            Next::Event(Some(Ok(Event::Message(message)))) => {
                if message.data.trim() == "[DONE]" {
                    self.end();
                } else if message.event == "error" {
                    let detail = super::error_message(&message.data);
                    self.fail(LlmError::Protocol(format!(
                        "the provider sent an error event: {detail}"
                    )));
                } else {
                    match chunk::parse(&message.data) {
                        Ok(chunk) => self.apply(chunk),
                        Err(e) => self.fail(e),
                    }
                }
            }
            // After `finish_reason` the text is complete: a missing `[DONE]` (or usage) is
            // not worth failing the completion for.
            Next::Event(_) if self.finish.is_some() => self.end(),
            Next::Event(None) | Next::Event(Some(Err(SseError::StreamEnded))) => self.fail(
                LlmError::Connection("the provider closed the stream before it finished".into()),
            ),
            Next::Event(Some(Err(e))) => self.fail(stream_error(e)),
        }
    }

    fn apply(&mut self, chunk: chunk::Chunk) {
        self.generated |= chunk.generated;
        if let Some(text) = chunk.text {
            self.deltas += 1;
            self.pending.push_back(Ok(CompletionEvent::Delta(text)));
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if chunk.finish.is_some() {
            self.finish = chunk.finish;
        }
    }

    /// Ends normally: `Usage` (when reported) and `Finished`.
    fn end(&mut self) {
        self.events = None;
        if let Some(usage) = self.usage.take() {
            self.pending.push_back(Ok(CompletionEvent::Usage(usage)));
        }
        let finish = self.finish.take().unwrap_or(FinishReason::Stop);
        tracing::debug!(deltas = self.deltas, ?finish, "stream finished");
        self.pending
            .push_back(Ok(CompletionEvent::Finished(finish)));
    }

    /// Ends with an error (closing the connection now), after the usage reported so far
    /// (providers with continuous usage stats, e.g. vLLM, report it on every chunk).
    fn fail(&mut self, error: LlmError) {
        self.events = None;
        if let Some(usage) = self.usage.take() {
            self.pending.push_back(Ok(CompletionEvent::Usage(usage)));
        }
        tracing::debug!(deltas = self.deltas, %error, "stream failed");
        self.pending.push_back(Err(error));
    }
}

/// The port's error for a failure of the event stream.
pub(super) fn stream_error(error: SseError) -> LlmError {
    match error {
        SseError::Transport(e) => LlmError::Connection(describe(&e)),
        SseError::StreamEnded => {
            LlmError::Connection("the provider closed the stream before it finished".into())
        }
        SseError::Utf8(e) => LlmError::Protocol(format!("the event stream is not UTF-8: {e}")),
        SseError::Parser(e) => LlmError::Protocol(format!("malformed event stream: {e}")),
        SseError::InvalidStatusCode(status, _) => LlmError::Http {
            status: status.as_u16(),
            body: String::new(),
        },
        other @ (SseError::InvalidContentType(..) | SseError::InvalidLastEventId(_)) => {
            LlmError::Protocol(other.to_string())
        }
    }
}

/// A reqwest error with its causes ("error sending request: …: connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("timed out: {error}")
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
