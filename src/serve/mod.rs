//! `logitscope serve`: the second front end, an HTTP server with OpenAI's legacy completions
//! endpoint, so that evaluation harnesses (lm-evaluation-harness's `gguf` and
//! `local-completions` models, scripts) get exact prompt log-probabilities: with `echo` and
//! `logprobs`, every prompt token's logprob, the numbers `score` prints.
//!
//! ```text
//! clients ─HTTP─> axum handlers ─Job─> engine thread (owns the model) ─answer─> handler
//! ```
//! The handlers only parse and check; the engine thread ([`worker`]) takes every queued request
//! at once and scores their prompts side by side.

mod api;
mod choice;
mod tokenizer;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

pub use api::{ApiError, CompletionRequest, DEFAULT_MAX_TOKENS};

use crate::analysis::stats::ViewOptions;
use crate::model::Model;

/// Request bodies larger than this are refused (413).
pub const MAX_BODY: usize = 8 << 20;
/// Requests waiting for the engine before new ones wait to be queued.
const QUEUE: usize = 1024;

/// How to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prompts scored side by side at most (llama.cpp server's `-np`).
    pub parallel: usize,
    /// The temperature of every number (the model is unchanged), as `score --temp`.
    pub view: ViewOptions,
    /// Tokens generated for a request that names no `max_tokens` (llama.cpp's `-n`).
    pub default_max_tokens: usize,
}

/// Bind the address first, so that a port in use is an error before the model loads.
pub fn bind(host: &str, port: u16) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind((host, port))
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    Ok(listener)
}

struct Shared {
    jobs: mpsc::Sender<Job>,
    /// For the tokenizer endpoints, answered on the HTTP threads (the vocabulary only).
    tokenizer: Arc<Model>,
    /// The engine's context: the most tokens a prompt and its continuation may have.
    n_ctx: usize,
    default_max_tokens: usize,
    model: String,
    next_id: AtomicU64,
}

use worker::Job;

/// Serve `model` on `listener` until Ctrl-C or SIGTERM. `ready` is told the address once the
/// server answers.
pub fn run(
    listener: std::net::TcpListener,
    model: Model,
    options: Options,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen: {e}"))?;
    let (tx, rx) = mpsc::channel::<Job>(QUEUE);
    let model = Arc::new(model);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("http")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
    std::thread::scope(|scope| {
        // The engine thread makes its contexts first and says how many tokens they hold.
        let (started, n_ctx) = std::sync::mpsc::channel();
        let engine = std::thread::Builder::new()
            .name("engine".into())
            .spawn_scoped(scope, || {
                worker::run(&model, options.parallel, options.view, rx, started)
            })
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        let shared = Arc::new(Shared {
            jobs: tx,
            tokenizer: Arc::clone(&model),
            n_ctx: n_ctx.recv().unwrap_or(0),
            default_max_tokens: options.default_max_tokens,
            model: model.info().file_name,
            next_id: AtomicU64::new(0),
        });
        let served = runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            ready(addr);
            axum::serve(listener, router(shared))
                .with_graceful_shutdown(shutdown())
                .await
                .map_err(|e| format!("the server stopped: {e}"))
        });
        // The router (and with it the last job sender) is gone: the engine thread ends.
        let _ = engine.join();
        served
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/health", get(health))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/tokenizer_info", get(tokenizer_info))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("logitscope: serve: stopping");
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
        (status, json, self.json()).into_response()
    }
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: CompletionRequest = parse(body)?;
    let params = request.check(shared.default_max_tokens)?;
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (reply, answer) = oneshot::channel();
    let job = Job {
        params,
        id: format!("cmpl-{created:x}-{n}"),
        created,
        reply,
    };
    shared
        .jobs
        .send(job)
        .await
        .map_err(|_| ApiError::server(503, "the engine has stopped".into()))?;
    // If the client goes away, this future is dropped with `answer`: the engine sees the
    // closed channel and skips the request.
    let response = answer.await.map_err(|_| {
        ApiError::server(
            500,
            "the engine failed on this request (see the log)".into(),
        )
    })??;
    Ok(Json(response).into_response())
}

/// A request body as JSON. Any content type is read as JSON (as llama.cpp's server does:
/// `curl -d` sends a form type).
fn parse<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(rejection)?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(
            format!("the request body is not a valid request: {e}"),
            None,
        )
    })
}

async fn tokenize(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<tokenizer::TokenizeResponse>, ApiError> {
    tokenizer::tokenize(&shared.tokenizer, shared.n_ctx, parse(body)?).map(Json)
}

async fn detokenize(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<tokenizer::DetokenizeResponse>, ApiError> {
    tokenizer::detokenize(&shared.tokenizer, parse(body)?).map(Json)
}

async fn tokenizer_info(State(shared): State<Arc<Shared>>) -> Json<tokenizer::TokenizerInfo> {
    Json(tokenizer::info(&shared.tokenizer, shared.n_ctx))
}

/// A body that could not be read: too large, or cut off.
fn rejection(r: BytesRejection) -> ApiError {
    let status = r.status().as_u16();
    let message = match status {
        413 => format!("the request body is larger than {} MiB", MAX_BODY >> 20),
        _ => format!("cannot read the request body: {}", r.body_text()),
    };
    ApiError {
        status,
        ..ApiError::invalid(message, None)
    }
}

async fn models(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "object": "list",
        "data": [{
            "id": shared.model,
            "object": "model",
            "created": 0,
            "owned_by": "logitscope",
        }],
    }))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError {
        status: 404,
        ..ApiError::invalid(
            "no such endpoint: this server has POST /v1/completions, GET /v1/models, GET /health, POST /tokenize, POST /detokenize and GET /tokenizer_info".into(),
            None,
        )
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: 405,
        ..ApiError::invalid("method not allowed on this endpoint".into(), None)
    }
}
