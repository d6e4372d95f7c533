//! One connection of the fake server: read and check the request, answer as scripted
//! (HTTP/1.1, chunked SSE frames or an error body), notice when the client leaves.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::{
    FakeReply, FakeStream, RecordedRequest, Shared, StreamEnd, error_body, lock, next_reply,
};

/// Longest a stall or a hang keeps the connection open.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most pieces an endless stream sends.
const MAX_ENDLESS_PIECES: usize = 2000;

/// How a response ended.
#[derive(PartialEq)]
enum Outcome {
    Completed,
    ClientClosed,
}

pub(super) async fn serve(shared: Arc<Shared>, socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let (mut reader, mut writer) = socket.into_split();
    let Ok(mut request) = read_request(&mut reader).await else {
        return;
    };
    request.problems = problems(&request, shared.api_key.as_deref());
    let (closed_tx, closed) = watch::channel(false);
    tokio::spawn(async move {
        let mut buf = [0_u8; 256];
        while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
        let _ = closed_tx.send(true);
    });
    let model = request.model().to_owned();
    let include_usage = request.body["stream_options"]["include_usage"] == json!(true);
    let auth_failed = request
        .problems
        .iter()
        .any(|p| p.starts_with("Authorization"));
    lock(&shared.requests).push(request.clone());
    let reply = if !request.problems.is_empty() {
        let status = if auth_failed { 401 } else { 400 };
        let message = format!("fake OpenAI server: {}", request.problems.join("; "));
        FakeReply::Error {
            status,
            headers: Vec::new(),
            body: error_body(&message, "invalid_request_error"),
        }
    } else {
        next_reply(&shared, &model).unwrap_or_else(|| FakeReply::Error {
            status: 404,
            headers: Vec::new(),
            body: error_body(
                &format!("The model `{model}` does not exist"),
                "model_not_found",
            ),
        })
    };
    let mut conn = Conn {
        writer: &mut writer,
        closed,
    };
    let outcome = match reply {
        FakeReply::Hang => conn.wait_closed(MAX_WAIT).await,
        FakeReply::Error {
            status,
            headers,
            body,
        } => conn.error(status, &headers, &body).await,
        FakeReply::Stream(script) => conn.stream(&script, &model, include_usage).await,
    };
    if outcome == Outcome::ClientClosed {
        shared.client_closed.send_modify(|n| *n += 1);
    }
}

/// Reads one HTTP/1.1 request and checks it.
async fn read_request(reader: &mut OwnedReadHalf) -> std::io::Result<RecordedRequest> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut bytes = Vec::new();
    let mut buf = [0_u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if bytes.len() > 64 * 1024 {
            return Err(invalid("head too long"));
        }
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Err(invalid("closed before the end of the head"));
        }
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = bytes.split_off(head_end + 4);
    while body.len() < length {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Err(invalid("closed before the end of the body"));
        }
        body.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(RecordedRequest {
        method,
        path,
        headers,
        body,
        problems: Vec::new(),
    })
}

fn problems(request: &RecordedRequest, api_key: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    check(request.method == "POST", "method must be POST");
    check(
        request.path.ends_with("/chat/completions"),
        "path must be …/chat/completions",
    );
    let header_has =
        |name: &str, want: &str| request.header(name).is_some_and(|v| v.contains(want));
    check(
        header_has("content-type", "application/json"),
        "Content-Type must be JSON",
    );
    check(
        header_has("accept", "text/event-stream"),
        "Accept must be text/event-stream",
    );
    let body = &request.body;
    check(body.is_object(), "the body must be a JSON object");
    check(
        body["model"].as_str().is_some_and(|m| !m.is_empty()),
        "`model` is required",
    );
    check(body["stream"] == json!(true), "`stream` must be true");
    check(
        body["stream_options"]["include_usage"] == json!(true),
        "`stream_options.include_usage` must be true",
    );
    check(
        body["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "`max_tokens` must be a positive integer",
    );
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    check(!messages.is_empty(), "`messages` must be a non-empty array");
    check(
        messages.iter().all(|m| {
            matches!(m["role"].as_str(), Some("system" | "user" | "assistant"))
                && m["content"].is_string()
        }),
        "every message needs a known `role` and a string `content`",
    );
    if let Some(key) = api_key {
        let expected = format!("Bearer {key}");
        check(
            request.header("authorization") == Some(expected.as_str()),
            "Authorization: Bearer <key> is missing or wrong",
        );
    }
    problems
}

/// The response side of one connection.
struct Conn<'a> {
    writer: &'a mut OwnedWriteHalf,
    closed: watch::Receiver<bool>,
}

impl Conn<'_> {
    /// Waits until the client leaves (or `max`).
    async fn wait_closed(&mut self, max: Duration) -> Outcome {
        match tokio::time::timeout(max, self.closed.wait_for(|c| *c)).await {
            Ok(_) => Outcome::ClientClosed,
            Err(_) => Outcome::Completed,
        }
    }

    /// Sleeps `delay` unless the client leaves first.
    async fn pause(&mut self, delay: Duration) -> Result<(), Outcome> {
        if *self.closed.borrow() {
            return Err(Outcome::ClientClosed);
        }
        if delay.is_zero() {
            return Ok(());
        }
        match tokio::time::timeout(delay, self.closed.wait_for(|c| *c)).await {
            Ok(_) => Err(Outcome::ClientClosed),
            Err(_) => Ok(()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Outcome> {
        let written = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        };
        written.await.map_err(|_| Outcome::ClientClosed)
    }

    /// One HTTP chunk (or several of `split` bytes, a little apart).
    async fn chunk(&mut self, data: &[u8], split: Option<usize>) -> Result<(), Outcome> {
        for piece in data.chunks(split.unwrap_or(data.len()).max(1)) {
            let mut frame = format!("{:x}\r\n", piece.len()).into_bytes();
            frame.extend_from_slice(piece);
            frame.extend_from_slice(b"\r\n");
            self.write(&frame).await?;
            if split.is_some() {
                self.pause(Duration::from_millis(1)).await?;
            }
        }
        Ok(())
    }

    async fn error(&mut self, status: u16, headers: &[(String, String)], body: &str) -> Outcome {
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            reason(status),
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        match self.write(head.as_bytes()).await {
            Ok(()) => Outcome::Completed,
            Err(outcome) => outcome,
        }
    }

    async fn stream(&mut self, script: &FakeStream, model: &str, include_usage: bool) -> Outcome {
        match self.try_stream(script, model, include_usage).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    async fn try_stream(
        &mut self,
        script: &FakeStream,
        model: &str,
        include_usage: bool,
    ) -> Result<Outcome, Outcome> {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            script.content_type
        );
        self.write(head.as_bytes()).await?;
        let frames = Frames {
            model,
            include_usage,
        };
        let split = script.split_every;
        self.chunk(
            frames
                .chunk(json!({"role": "assistant", "content": ""}), None)
                .as_bytes(),
            None,
        )
        .await?;
        self.pause(script.first_token_delay).await?;
        let prompt_tokens = script.usage.map_or(0, |(prompt, _)| prompt);
        for (i, piece) in script.pieces.iter().enumerate() {
            if i > 0 {
                self.pause(script.interval).await?;
            }
            let mut frame = frames.chunk(json!({ "content": piece }), None);
            if script.continuous_usage {
                let done = i64::try_from(i + 1).unwrap_or(i64::MAX);
                frame = frames.with_usage(&frame, prompt_tokens, done);
            }
            self.chunk(frame.as_bytes(), split).await?;
        }
        match &script.end {
            StreamEnd::Done => {
                if let Some(reason) = &script.finish_reason {
                    self.chunk(frames.chunk(json!({}), Some(reason)).as_bytes(), None)
                        .await?;
                }
                if let (true, Some((prompt, completion))) = (include_usage, script.usage) {
                    self.chunk(frames.usage(prompt, completion).as_bytes(), None)
                        .await?;
                }
                self.chunk(b"data: [DONE]\n\n", None).await?;
                self.write(b"0\r\n\r\n").await?;
                Ok(Outcome::Completed)
            }
            StreamEnd::Stall => Ok(self.wait_closed(MAX_WAIT).await),
            StreamEnd::Abort => Ok(Outcome::Completed),
            StreamEnd::Malformed(raw) => {
                self.chunk(format!("data: {raw}\n\n").as_bytes(), None)
                    .await?;
                Ok(self.wait_closed(MAX_WAIT).await)
            }
            StreamEnd::Endless => {
                for piece in script.pieces.iter().cycle().take(MAX_ENDLESS_PIECES) {
                    self.pause(script.interval.max(Duration::from_millis(1)))
                        .await?;
                    self.chunk(
                        frames.chunk(json!({ "content": piece }), None).as_bytes(),
                        split,
                    )
                    .await?;
                }
                Ok(Outcome::Completed)
            }
        }
    }
}

/// Builds `chat.completion.chunk` frames.
struct Frames<'a> {
    model: &'a str,
    include_usage: bool,
}

impl Frames<'_> {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let mut chunk = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    }

    /// `frame` (one `data:` line) with a `usage` object.
    fn with_usage(&self, frame: &str, prompt: i64, completion: i64) -> String {
        let json = frame.trim().trim_start_matches("data: ");
        let mut chunk: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        chunk["usage"] = json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion });
        format!("data: {chunk}\n\n")
    }

    fn usage(&self, prompt: i64, completion: i64) -> String {
        let chunk = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion },
        });
        format!("data: {chunk}\n\n")
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
