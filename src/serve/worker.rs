//! The engine thread: it owns the model and its sessions, takes the queued requests, scores
//! all their prompts side by side, generates where asked, and answers each on its own
//! channel. A client that went away is skipped (or its generation stopped).

use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

use super::api::{ApiError, CompletionResponse, Params, Prompt, Usage};
use super::choice::{build, Evaluated};
use crate::analysis::stats::ViewOptions;
use crate::engine::complete::{Completer, Continuation, Generation};
use crate::model::{Evaluation, Model};

/// A request waiting for the engine, and where its answer goes.
pub struct Job {
    pub params: Params,
    pub id: String,
    pub created: u64,
    pub reply: oneshot::Sender<Result<CompletionResponse, ApiError>>,
}

/// Requests taken together into one round of side-by-side scoring, at most.
const MAX_ROUND: usize = 64;

/// Serve jobs until every sender is gone. `view` holds the temperature of every number (the
/// `--temp` of `score`). `started` is told the context's length (0 when there is none) once
/// the engine's contexts are made.
pub fn run(
    model: &Model,
    parallel: usize,
    view: ViewOptions,
    mut jobs: mpsc::Receiver<Job>,
    started: std::sync::mpsc::Sender<usize>,
) {
    // The self-check decides how prompts are batched: run before the first request, and on
    // this thread, the one that decodes. OpenMP keeps a team of threads for each thread that
    // ran a decode; with a second team alive (one on the main thread) libgomp counts more
    // threads than CPUs and stops spinning at its barriers, and every one-token decode of
    // generation took about 1.6 times as long (13 ms against 8 on SmolLM2, 2 threads).
    let _ = model.layout();
    let mut completer = match Completer::new(model, parallel) {
        Ok(c) => {
            let _ = started.send(c.n_ctx());
            c
        }
        Err(e) => {
            let _ = started.send(0);
            tracing::error!("serve: cannot make a context: {e}");
            // Answer what comes with the reason rather than hang.
            while let Some(job) = jobs.blocking_recv() {
                let _ = job
                    .reply
                    .send(Err(ApiError::server(503, format!("no context: {e}"))));
            }
            return;
        }
    };
    while let Some(first) = jobs.blocking_recv() {
        let mut round = vec![first];
        while round.len() < MAX_ROUND {
            match jobs.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        round.retain(|j| !j.reply.is_closed());
        if round.is_empty() {
            continue;
        }
        // A panic in one round answers its requests with an error (their senders are
        // dropped) and the server goes on.
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serve_round(&mut completer, view, round)
        }));
        if done.is_err() {
            tracing::error!("serve: a round of requests failed with a panic");
        }
    }
}

/// One prompt of one job, tokenized and checked.
struct Item {
    job: usize,
    text: String,
    tokens: Vec<u32>,
    /// Token ids sent by the client: every token is listed.
    from_ids: bool,
}

fn serve_round(completer: &mut Completer<'_>, view: ViewOptions, round: Vec<Job>) {
    let model = completer.model();
    let vocab = model.vocab().clone();
    let n_ctx = completer.n_ctx();
    let mut items = Vec::new();
    let mut refused: Vec<Option<ApiError>> = round.iter().map(|_| None).collect();
    for (j, job) in round.iter().enumerate() {
        for prompt in &job.params.prompts {
            let item = match prompt {
                Prompt::Text(text) => Item {
                    job: j,
                    text: text.clone(),
                    tokens: model.tokenize(text),
                    from_ids: false,
                },
                Prompt::Tokens(ids) => {
                    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab.len()) {
                        refused[j] = Some(ApiError::invalid(
                            format!(
                                "token id {bad} is outside the vocabulary ({} tokens)",
                                vocab.len()
                            ),
                            Some("prompt"),
                        ));
                        continue;
                    }
                    let bytes: Vec<u8> = ids
                        .iter()
                        .flat_map(|&id| vocab.bytes(id).to_vec())
                        .collect();
                    Item {
                        job: j,
                        text: String::from_utf8_lossy(&bytes).into_owned(),
                        tokens: ids.clone(),
                        from_ids: true,
                    }
                }
            };
            let need = item.tokens.len() + job.params.max_tokens;
            if item.tokens.len() > n_ctx || (need > n_ctx && job.params.max_tokens_asked) {
                refused[j] = Some(ApiError::too_long(format!(
                    "the context holds {n_ctx} tokens, but the prompt has {} and max_tokens asks for {} more (start the server with a larger -c)",
                    item.tokens.len(),
                    if job.params.max_tokens_asked { job.params.max_tokens } else { 0 }
                )));
            }
            items.push(item);
        }
    }
    items.retain(|it| refused[it.job].is_none());
    let k = round
        .iter()
        .flat_map(|j| [j.params.logprobs, j.params.prompt_logprobs])
        .flatten()
        .max()
        .unwrap_or(0)
        .max(1);
    let view = ViewOptions { n_probs: k, ..view };
    let tokens: Vec<Vec<u32>> = items.iter().map(|it| it.tokens.clone()).collect();
    let evaluations = completer.evaluate_prompts(&tokens, view);
    let mut answers: Vec<Vec<(usize, Evaluation, Continuation)>> =
        round.iter().map(|_| Vec::new()).collect();
    for (item, ev) in items.iter().zip(evaluations) {
        let job = &round[item.job];
        if refused[item.job].is_some() || job.reply.is_closed() {
            continue;
        }
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                refused[item.job] = Some(ApiError::server(500, e.to_string()));
                continue;
            }
        };
        let generation = Generation {
            max_tokens: job.params.max_tokens,
            choice: job.params.choice,
            stop: job.params.stop.clone(),
        };
        let mut rng = match job.params.seed {
            Some(s) => rand::rngs::StdRng::seed_from_u64(s),
            None => rand::rngs::StdRng::from_os_rng(),
        };
        let mut draw = || rng.random::<f64>();
        let cancel = || job.reply.is_closed();
        let continuation = if generation.max_tokens == 0 {
            Ok(Some(Continuation::none()))
        } else {
            completer.generate(&ev, &generation, view, &mut draw, &cancel)
        };
        match continuation {
            Ok(Some(c)) => {
                let index = answers[item.job].len();
                answers[item.job].push((index, ev, c));
            }
            Ok(None) => {} // the client left
            Err(e) => refused[item.job] = Some(ApiError::server(500, e.to_string())),
        }
    }
    let model_name = model.info().file_name;
    let mut items_of_job: Vec<Vec<&Item>> = round.iter().map(|_| Vec::new()).collect();
    for it in &items {
        items_of_job[it.job].push(it);
    }
    for (j, job) in round.into_iter().enumerate() {
        let answer = match refused[j].take() {
            Some(e) => Err(e),
            None if answers[j].len() < job.params.prompts.len() => continue,
            None => {
                let mut usage = Usage::default();
                let choices = answers[j]
                    .iter()
                    .zip(&items_of_job[j])
                    .map(|((index, ev, c), item)| {
                        usage.prompt_tokens += ev.tokens.len();
                        usage.completion_tokens += c.n_generated();
                        let from_ids = item.from_ids;
                        let listed = |i: usize| from_ids || !vocab.is_special(ev.tokens[i]);
                        let prompt = Evaluated {
                            text: &item.text,
                            tokens: &ev.tokens,
                            rows: &ev.rows,
                            listed: &listed,
                        };
                        build(
                            *index,
                            &vocab,
                            &prompt,
                            c,
                            job.params.echo,
                            job.params.logprobs,
                            job.params.prompt_logprobs,
                        )
                    })
                    .collect();
                usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
                Ok(CompletionResponse {
                    id: job.id.clone(),
                    object: "text_completion",
                    created: job.created,
                    model: model_name.clone(),
                    choices,
                    usage,
                })
            }
        };
        let _ = job.reply.send(answer);
    }
}
