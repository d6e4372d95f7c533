//! The embedded local language model (feature `local-llm`): a GGUF chat model run in
//! process by llama.cpp (crate `llama-cpp-2`), the zero-configuration default.
//!
//! [`LocalModel`] implements the [`LanguageModel`] port (see its contract):
//! - the model file is loaded once ([`LocalModel::load`]) and shared by `parallel` worker
//!   threads, each with its own llama.cpp context (KV cache), created on its first job and
//!   reused. Generation runs on those dedicated threads, never on the async runtime;
//!   requests beyond `parallel` wait in a queue (at most `max_queued`, then
//!   `Unavailable`), so concurrent requests run or queue, never crash;
//! - `stream` tokenizes the prompt (a prompt longer than the context is refused with
//!   `Http { status: 400 }`, as the llama.cpp server does), queues the job and returns a
//!   stream fed by a bounded channel from the worker: `Started` when a worker takes the
//!   job, `Delta`s, `Usage` (prompt and completion token counts) and
//!   `Finished(Stop)` at an end-of-generation token or `Finished(Length)` at `max_tokens`
//!   (or a full context);
//! - the prompt is ChatML (`<|im_start|>role\n…<|im_end|>\n`), without BOS; special
//!   tokens are parsed in the template but not in message contents (a message cannot
//!   forge a turn). A last `assistant` message is text to continue: it is left open.
//!   Without a system message the model's default one is used (SmolLM2's template does
//!   the same);
//! - sampling is seeded: temperature 0 (or NaN) is greedy; otherwise top-k 40, top-p 0.95,
//!   min-p 0.05, temperature, then a draw from a seeded distribution (the request's
//!   seed, else [`LocalModelOptions::seed`], else a fresh random one). The same request
//!   and seed give byte-identical text. A repetition penalty (default 1.1 over the last
//!   64 tokens, greedy included) keeps the small model from looping;
//! - text is decoded incrementally as UTF-8: a token that ends inside a character is
//!   held until the character completes, so every `Delta` is whole characters;
//! - dropping the stream closes the channel; the worker checks it after every token
//!   (and every 128 prompt tokens), so decoding stops within one token and the worker
//!   takes the next job. A queued job whose stream is gone is skipped.

use async_trait::async_trait;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Instant;
use tokio::sync::mpsc as tokio_mpsc;
use znovel_domain::ports::{
    ChatMessage, ChatRole, CompletionEvent, CompletionRequest, CompletionStream, FinishReason,
    LanguageModel, LlmError, ServedBy, TokenUsage,
};

/// The chat model file `scripts/fetch-models.sh` puts in `$ZNOVEL_DATA_DIR/models/`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The system message of SmolLM2's chat template, used when a prompt has none.
pub const SMOLLM2_SYSTEM_PROMPT: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// Events buffered between a worker and its stream (back-pressure past that).
const CHANNEL_CAPACITY: usize = 64;
/// Prompt tokens decoded per step; the stream's liveness is checked between steps.
const PROMPT_CHUNK: usize = 128;
/// Tokens the repetition penalty looks back over.
const PENALTY_LAST_N: i32 = 64;

/// How to run the local model.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalModelOptions {
    /// CPU threads per generation (default: half the cores, 1 to 4). Keep threads ×
    /// `parallel` within the cores: ggml's threads wait for each other by spinning, and
    /// on a busy machine 2 threads measured 15 times slower than 1.
    pub threads: usize,
    /// Context size in tokens, prompt plus completion (default 4096; 0: the model's
    /// training context). Each context holds a KV cache of about 23 KB per token for
    /// SmolLM2-135M (94 MB at 4096).
    pub context_size: u32,
    /// Seed for requests that carry none (default none: a fresh random seed each).
    pub seed: Option<u64>,
    /// Generations run at once, one context (and `threads` threads) each; the others
    /// queue. Default: the cores over `threads`, 1 to 4. A worker creates its context
    /// on its first request.
    pub parallel: usize,
    /// Most requests waiting for a worker before `stream` answers `Unavailable`.
    pub max_queued: usize,
    /// Repetition penalty over the last 64 tokens (1.0: none).
    pub repeat_penalty: f32,
    /// System message used when a prompt has none (`None`: no system turn).
    pub default_system_prompt: Option<String>,
}

impl Default for LocalModelOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / 2).clamp(1, 4);
        Self {
            threads,
            context_size: 4096,
            seed: None,
            parallel: (cores / threads).clamp(1, 4),
            max_queued: 64,
            repeat_penalty: 1.1,
            default_system_prompt: Some(SMOLLM2_SYSTEM_PROMPT.to_owned()),
        }
    }
}

/// The embedded chat model: cheap to clone, every clone shares the loaded model and
/// its workers (they stop when the last clone is dropped).
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    served_by: ServedBy,
    max_queued: usize,
}

/// What the workers share: the model and the settings of every generation.
struct Shared {
    model: LlamaModel,
    options: LocalModelOptions,
    n_ctx: u32,
    /// Jobs sent but not yet taken by a worker.
    queued: AtomicUsize,
    served_by: ServedBy,
}

/// One request, tokenized, on its way to a worker.
struct Job {
    prompt: Vec<LlamaToken>,
    /// A GBNF grammar the answer must follow (from the request's JSON schema).
    grammar: Option<String>,
    max_tokens: u32,
    temperature: f32,
    seed: u32,
    events: tokio_mpsc::Sender<Result<CompletionEvent, LlmError>>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("model", &self.inner.served_by.model)
            .field("options", &self.inner.shared.options)
            .finish_non_exhaustive()
    }
}

/// The process-wide llama.cpp backend (it can be initialized once only).
fn backend() -> anyhow::Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            let backend = LlamaBackend::init().map_err(|e| e.to_string());
            exit_guard::install();
            backend
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("cannot initialize llama.cpp: {e}"))
}

/// llama.cpp may not create two contexts of one model at once.
static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

impl LocalModel {
    /// Where `scripts/fetch-models.sh` puts the default model under a data directory.
    pub fn default_path(data_dir: &Path) -> PathBuf {
        data_dir.join("models").join(DEFAULT_MODEL_FILE)
    }

    /// Loads the GGUF model at `path` (blocking, a fraction of a second for the default
    /// model) and starts its workers. Fails, naming the path, when the file is missing
    /// or is not a model llama.cpp can load.
    pub fn load(path: &Path, options: LocalModelOptions) -> anyhow::Result<Self> {
        if !path.is_file() {
            anyhow::bail!(
                "local model file {} not found: run scripts/fetch-models.sh to fetch it",
                path.display()
            );
        }
        let backend = backend()?;
        let started = Instant::now();
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| anyhow::anyhow!("cannot load local model {}: {e}", path.display()))?;
        let n_ctx = match options.context_size {
            0 => model.n_ctx_train(),
            n => n,
        };
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let served_by = ServedBy {
            provider: "local".to_owned(),
            model: name,
            fallback: false,
        };
        tracing::info!(
            model = %served_by.model,
            load_ms = started.elapsed().as_millis() as u64,
            n_ctx,
            threads = options.threads,
            parallel = options.parallel,
            "local model loaded"
        );
        let max_queued = options.max_queued;
        let shared = Arc::new(Shared {
            model,
            n_ctx,
            options,
            queued: AtomicUsize::new(0),
            served_by: served_by.clone(),
        });
        let (jobs, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..shared.options.parallel.max(1) {
            let (shared, receiver) = (Arc::clone(&shared), Arc::clone(&receiver));
            std::thread::Builder::new()
                .name(format!("znovel-llm-{i}"))
                .spawn(move || worker(&shared, &receiver))
                .map_err(|e| anyhow::anyhow!("cannot start a local model thread: {e}"))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                jobs,
                served_by,
                max_queued,
            }),
        })
    }

    /// The prompt's tokens: ChatML, no BOS, special tokens parsed in the template only.
    fn tokenize(&self, messages: &[ChatMessage]) -> Vec<LlamaToken> {
        let shared = &self.inner.shared;
        let vocab = shared.model.vocab();
        let mut tokens = Vec::new();
        for (text, special) in chatml(messages, shared.options.default_system_prompt.as_deref()) {
            vocab.tokenize_into(text.as_bytes(), &mut tokens, false, special);
        }
        tokens
    }
}

/// The ChatML prompt as pieces: `(text, is_template)`; template pieces hold the special
/// tokens. A last assistant message is left open for the model to continue.
fn chatml<'a>(
    messages: &'a [ChatMessage],
    default_system: Option<&'a str>,
) -> Vec<(&'a str, bool)> {
    let mut pieces = Vec::new();
    let mut turn = |role: &'static str, content: &'a str, close: bool| {
        pieces.push((role, true));
        pieces.push((content, false));
        if close {
            pieces.push(("<|im_end|>\n", true));
        }
    };
    if let (Some(system), false) = (
        default_system,
        matches!(messages.first(), Some(m) if m.role == ChatRole::System),
    ) {
        turn("<|im_start|>system\n", system, true);
    }
    let continues = matches!(messages.last(), Some(m) if m.role == ChatRole::Assistant);
    for (i, message) in messages.iter().enumerate() {
        let role = match message.role {
            ChatRole::System => "<|im_start|>system\n",
            ChatRole::User => "<|im_start|>user\n",
            ChatRole::Assistant => "<|im_start|>assistant\n",
        };
        turn(
            role,
            &message.content,
            !(continues && i + 1 == messages.len()),
        );
    }
    if !continues {
        pieces.push(("<|im_start|>assistant\n", true));
    }
    pieces.retain(|(text, _)| !text.is_empty());
    pieces
}

#[async_trait]
impl LanguageModel for LocalModel {
    fn served_by(&self) -> ServedBy {
        self.inner.served_by.clone()
    }

    #[tracing::instrument(skip_all, fields(provider = "local", model = %self.inner.served_by.model))]
    async fn stream(&self, request: CompletionRequest) -> Result<CompletionStream, LlmError> {
        let inner = &self.inner;
        let prompt = self.tokenize(&request.messages);
        let n_ctx = inner.shared.n_ctx as usize;
        if prompt.is_empty() {
            return Err(LlmError::Http {
                status: 400,
                body: "the prompt is empty".to_owned(),
            });
        }
        if prompt.len() >= n_ctx {
            return Err(LlmError::Http {
                status: 400,
                body: format!(
                    "the prompt has {} tokens; the local model's context holds {n_ctx}",
                    prompt.len()
                ),
            });
        }
        let seed = request
            .seed
            .or(inner.shared.options.seed)
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
        // Structured output: the JSON schema becomes a grammar that constrains decoding.
        let grammar = match &request.json_schema {
            None => None,
            Some(schema) => Some(
                llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
                    LlmError::Http {
                        status: 400,
                        body: format!("the JSON schema cannot be turned into a grammar: {e}"),
                    }
                })?,
            ),
        };
        let (events, receiver) = tokio_mpsc::channel(CHANNEL_CAPACITY);
        let job = Job {
            prompt,
            grammar,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            seed: fold_seed(seed),
            events,
        };
        if inner.shared.queued.fetch_add(1, Ordering::SeqCst) >= inner.max_queued {
            inner.shared.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(LlmError::Unavailable(format!(
                "the local model is busy ({} requests queued)",
                inner.max_queued
            )));
        }
        if inner.jobs.send(job).is_err() {
            inner.shared.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(LlmError::Unavailable(
                "the local model's workers stopped".to_owned(),
            ));
        }
        let mut receiver = receiver;
        Ok(Box::pin(futures_util::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx)
        })))
    }
}

/// A 32-bit llama.cpp seed from ours; never `u32::MAX`, which llama.cpp reads as "random".
fn fold_seed(seed: u64) -> u32 {
    let folded = (seed ^ (seed >> 32)) as u32;
    if folded == u32::MAX {
        folded - 1
    } else {
        folded
    }
}

/// A worker thread: takes jobs until the model is dropped, with one context of its own.
fn worker(shared: &Shared, jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut context: Option<LlamaContext<'_>> = None;
    loop {
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else { break };
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        if job.events.is_closed() {
            continue;
        }
        if context.is_none() {
            match new_context(shared) {
                Ok(created) => context = Some(created),
                Err(e) => {
                    let _ = job.events.blocking_send(Err(LlmError::Unavailable(e)));
                    continue;
                }
            }
        }
        let Some(ctx) = context.as_mut() else {
            continue;
        };
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| generate(shared, ctx, &job)));
        let failure = match run {
            Ok(Ok(())) | Ok(Err(Failure::Cancelled)) => None,
            Ok(Err(Failure::Llama(message))) => Some(message),
            Err(_) => {
                // The context may be inconsistent after a panic: start afresh.
                context = None;
                Some("the local model panicked".to_owned())
            }
        };
        if let Some(message) = failure {
            tracing::warn!(model = %shared.served_by.model, %message, "local generation failed");
            let _ = job
                .events
                .blocking_send(Err(LlmError::Unavailable(message)));
        }
    }
}

fn new_context(shared: &Shared) -> Result<LlamaContext<'_>, String> {
    let backend = backend().map_err(|e| e.to_string())?;
    let threads = i32::try_from(shared.options.threads.max(1)).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(shared.n_ctx))
        .with_n_batch(PROMPT_CHUNK as u32)
        .with_n_ubatch(PROMPT_CHUNK as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let _guard = CONTEXT_CREATION.lock().unwrap_or_else(|e| e.into_inner());
    shared
        .model
        .new_context(backend, params)
        .map_err(|e| format!("cannot create a llama.cpp context: {e}"))
}

/// Why a generation ended early.
enum Failure {
    /// The stream was dropped.
    Cancelled,
    /// llama.cpp failed.
    Llama(String),
}

fn send(job: &Job, event: CompletionEvent) -> Result<(), Failure> {
    job.events
        .blocking_send(Ok(event))
        .map_err(|_| Failure::Cancelled)
}

fn llama_err(e: impl std::fmt::Display) -> Failure {
    Failure::Llama(e.to_string())
}

fn sampler(shared: &Shared, job: &Job) -> Result<LlamaSampler, Failure> {
    let mut chain = Vec::new();
    if let Some(grammar) = &job.grammar {
        chain.push(LlamaSampler::grammar(&shared.model, grammar, "root").map_err(llama_err)?);
    }
    let penalty = shared.options.repeat_penalty;
    if penalty != 1.0 {
        chain.push(LlamaSampler::penalties(
            shared.model.n_vocab(),
            PENALTY_LAST_N,
            penalty,
            0.0,
            0.0,
        ));
    }
    if job.temperature.is_nan() || job.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        chain.extend([
            LlamaSampler::top_k(40),
            LlamaSampler::top_p(0.95, 1),
            LlamaSampler::min_p(0.05, 1),
            LlamaSampler::temp(job.temperature),
            LlamaSampler::dist(job.seed),
        ]);
    }
    Ok(LlamaSampler::chain_simple(chain))
}

/// Runs one job on `ctx`, sending its events.
fn generate(shared: &Shared, ctx: &mut LlamaContext<'_>, job: &Job) -> Result<(), Failure> {
    let started = Instant::now();
    ctx.clear_kv_cache();
    send(job, CompletionEvent::Started(shared.served_by.clone()))?;
    let vocab = shared.model.vocab();
    let mut batch = LlamaBatch::new(PROMPT_CHUNK, 1);
    let mut position: i32 = 0;
    let last = job.prompt.len().saturating_sub(1);
    for (index, chunk) in job.prompt.chunks(PROMPT_CHUNK).enumerate() {
        if job.events.is_closed() {
            return Err(Failure::Cancelled);
        }
        batch.clear();
        for (offset, token) in chunk.iter().enumerate() {
            let wants_logits = index * PROMPT_CHUNK + offset == last;
            batch
                .add(*token, position, &[0], wants_logits)
                .map_err(llama_err)?;
            position += 1;
        }
        let _decoding = exit_guard::Decoding::enter().ok_or(Failure::Cancelled)?;
        ctx.decode(&mut batch).map_err(llama_err)?;
    }
    let prompt_done = Instant::now();
    let mut sampler = sampler(shared, job)?;
    let mut text = Utf8Decoder::default();
    let mut generated: u32 = 0;
    let reason = loop {
        if generated >= job.max_tokens || position as u32 >= shared.n_ctx {
            break FinishReason::Length;
        }
        let token = sampler.sample(ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            break FinishReason::Stop;
        }
        generated += 1;
        let delta = text.push(&vocab.token_to_piece(token, false, None));
        if !delta.is_empty() {
            send(job, CompletionEvent::Delta(delta))?;
        }
        if job.events.is_closed() {
            return Err(Failure::Cancelled);
        }
        if generated >= job.max_tokens {
            break FinishReason::Length;
        }
        batch.clear();
        batch.add(token, position, &[0], true).map_err(llama_err)?;
        position += 1;
        let _decoding = exit_guard::Decoding::enter().ok_or(Failure::Cancelled)?;
        ctx.decode(&mut batch).map_err(llama_err)?;
    };
    let rest = text.finish();
    if !rest.is_empty() {
        send(job, CompletionEvent::Delta(rest))?;
    }
    let secs = prompt_done.elapsed().as_secs_f64();
    tracing::debug!(
        prompt_tokens = job.prompt.len(),
        completion_tokens = generated,
        prompt_ms = (prompt_done - started).as_millis() as u64,
        tokens_per_second = if secs > 0.0 {
            f64::from(generated) / secs
        } else {
            0.0
        },
        "local generation done"
    );
    send(
        job,
        CompletionEvent::Usage(TokenUsage {
            prompt_tokens: job.prompt.len() as i64,
            completion_tokens: i64::from(generated),
        }),
    )?;
    send(job, CompletionEvent::Finished(reason))
}

/// Turns token bytes into text, holding a character split across tokens until it is
/// complete; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// The complete characters so far.
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(valid) => {
                    out.push_str(valid);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(invalid) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + invalid);
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end (an unfinished character becomes U+FFFD).
    fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_decoder_holds_split_characters() {
        let text = "龙在云中。é!";
        let bytes = text.as_bytes();
        let mut decoder = Utf8Decoder::default();
        let mut out = String::new();
        for byte in bytes {
            let piece = decoder.push(std::slice::from_ref(byte));
            out.push_str(&piece);
        }
        out.push_str(&decoder.finish());
        assert_eq!(out, text);
        // Two bytes of a three-byte character give nothing yet.
        assert_eq!(decoder.push(&"龙".as_bytes()[..2]), "");
        assert_eq!(decoder.push(&"龙".as_bytes()[2..]), "龙");
    }

    #[test]
    fn utf8_decoder_replaces_invalid_bytes() {
        let mut decoder = Utf8Decoder::default();
        assert_eq!(decoder.push(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(decoder.push(b"\xe9\xbe"), "");
        assert_eq!(decoder.finish(), "\u{FFFD}");
    }

    #[test]
    fn chatml_closes_turns_and_opens_the_answer() {
        let messages = [
            ChatMessage::new(ChatRole::System, "Be brief."),
            ChatMessage::new(ChatRole::User, "Hi"),
        ];
        let prompt: String = chatml(&messages, Some("default"))
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn chatml_adds_the_default_system_and_continues_an_assistant_turn() {
        let messages = [
            ChatMessage::new(ChatRole::User, "Write."),
            ChatMessage::new(ChatRole::Assistant, "Once upon"),
        ];
        let pieces = chatml(&messages, Some("sys"));
        let prompt: String = pieces.iter().map(|p| p.0).collect();
        assert_eq!(
            prompt,
            "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nWrite.<|im_end|>\n<|im_start|>assistant\nOnce upon"
        );
        // Message contents are never parsed for special tokens.
        assert!(
            pieces
                .iter()
                .any(|&(text, special)| text == "Write." && !special)
        );
    }

    #[test]
    fn seeds_fold_to_32_bits_but_never_to_the_random_marker() {
        assert_eq!(fold_seed(42), 42);
        assert_ne!(fold_seed(u64::from(u32::MAX)), u32::MAX);
        assert_ne!(fold_seed(1 << 32), fold_seed(2 << 32));
    }
}

/// Process exit versus running decodes. When the process exits (`main` returns, or
/// `std::process::exit`), the C library runs llama.cpp's static destructors, which free
/// the CPU backend's state; a model thread still inside `llama_decode` then crashes the
/// exiting process (SIGSEGV instead of a clean exit code). So: an `atexit` hook, registered
/// after llama.cpp's statics exist (hence run before their destructors), stops new decodes
/// and waits (at most [`EXIT_WAIT`]) for the running ones to finish.
mod exit_guard {
    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Longest wait at exit for running decodes (one decode takes milliseconds).
    const EXIT_WAIT: Duration = Duration::from_secs(5);

    static EXITING: AtomicBool = AtomicBool::new(false);
    static ACTIVE: AtomicUsize = AtomicUsize::new(0);

    /// Registers the hook when the backend starts. It is registered once more after the
    /// first decode (see [`Decoding`]'s `drop`): llama.cpp creates some statics lazily
    /// during the first computation (the CPU backend's extra buffer types), and exit
    /// handlers run in the reverse order of registration, so only a hook registered after
    /// them runs before their destructors. Running the hook twice is harmless.
    pub(super) fn install() {
        static AT_START: Once = Once::new();
        AT_START.call_once(register);
    }

    fn register() {
        // SAFETY: `atexit` stores a plain `extern "C"` function pointer; the function
        // captures nothing, touches only atomics and sleeps, and never unwinds.
        #[allow(unsafe_code)]
        let failed = unsafe { libc::atexit(on_exit) } != 0;
        if failed {
            tracing::warn!("cannot register the local model's exit hook");
        }
    }

    extern "C" fn on_exit() {
        EXITING.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + EXIT_WAIT;
        while ACTIVE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A decode in progress; `None` once the process is exiting.
    pub(super) struct Decoding(());

    impl Decoding {
        pub(super) fn enter() -> Option<Self> {
            // Count first, then check: an exit that starts after the check waits for us.
            ACTIVE.fetch_add(1, Ordering::SeqCst);
            if EXITING.load(Ordering::SeqCst) {
                ACTIVE.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            Some(Self(()))
        }
    }

    impl Drop for Decoding {
        fn drop(&mut self) {
            static AFTER_FIRST_DECODE: Once = Once::new();
            AFTER_FIRST_DECODE.call_once(register);
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
