//! The engine thread: owns the model and its contexts, takes the latest job, answers with
//! [`EngineMsg`]s.
//!
//! Jobs go through [`JobSlot`]s that keep only the newest job ("keeps overwriting the next job
//! until it is actually taken", as gitui's `AsyncSingleJob` puts it): a burst of keystrokes
//! becomes one evaluation. A running evaluation or fill checks between decodes whether a newer
//! job of its kind is waiting and stops early if so.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::app::{EngineMsg, Job, Msg, Scored};
use crate::engine::{ModelOptions, Session};

impl Job {
    fn generation(&self) -> u64 {
        match self {
            Job::Evaluate { generation, .. } | Job::Fill { generation, .. } => *generation,
        }
    }
}

/// Latest-wins job queue with one slot per kind of job (evaluations before fills).
#[derive(Default)]
pub struct JobSlot {
    slots: Mutex<(Option<Job>, Option<Job>)>,
    wake: Condvar,
    /// Generation of the newest job submitted, per kind: running work compares against it.
    newest_eval: AtomicU64,
    newest_fill: AtomicU64,
    shutdown: AtomicBool,
}

impl JobSlot {
    pub fn submit(&self, job: Job) {
        let g = job.generation();
        if let Ok(mut s) = self.slots.lock() {
            match job {
                Job::Evaluate { .. } => {
                    self.newest_eval.fetch_max(g, Ordering::SeqCst);
                    s.0 = Some(job);
                }
                Job::Fill { .. } => {
                    self.newest_fill.fetch_max(g, Ordering::SeqCst);
                    s.1 = Some(job);
                }
            }
        }
        self.wake.notify_all();
    }

    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    /// Block until a job is there (evaluations first) or shutdown.
    pub fn take(&self) -> Option<Job> {
        let mut s = self.slots.lock().ok()?;
        loop {
            if self.shutdown.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(j) = s.0.take() {
                return Some(j);
            }
            if let Some(j) = s.1.take() {
                return Some(j);
            }
            s = self.wake.wait(s).ok()?;
        }
    }

    fn superseded(&self, job: &Job) -> bool {
        self.shutdown.load(Ordering::SeqCst)
            || match job {
                Job::Evaluate { generation, .. } => {
                    self.newest_eval.load(Ordering::SeqCst) > *generation
                }
                Job::Fill { generation, .. } => {
                    self.newest_fill.load(Ordering::SeqCst) > *generation
                }
            }
    }
}

/// Start the engine thread: load the model (reporting progress), then serve jobs forever.
pub fn spawn(options: ModelOptions, jobs: Arc<JobSlot>, tx: Sender<Msg>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || serve(options, &jobs, &tx))
        .map(|_| ())
}

fn send(tx: &Sender<Msg>, m: EngineMsg) {
    let _ = tx.send(Msg::Engine(m));
}

fn serve(options: ModelOptions, jobs: &JobSlot, tx: &Sender<Msg>) {
    let progress_tx = tx.clone();
    // Test hook: stretch the load so a test can act while it is in progress.
    let slow_ms: u64 = std::env::var("LOGITSCOPE_TEST_SLOW_LOAD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let model = match crate::cli::load_model(&options, move |p| {
        let _ = progress_tx.send(Msg::Engine(EngineMsg::LoadProgress(p)));
        if slow_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(slow_ms));
        }
        true
    }) {
        Ok(m) => m,
        Err(f) => return send(tx, EngineMsg::LoadFailed(f.message)),
    };
    let mut main = match model.session() {
        Ok(s) => s,
        Err(e) => return send(tx, EngineMsg::LoadFailed(e.to_string())),
    };
    send(
        tx,
        EngineMsg::Loaded {
            info: model.info(),
            vocab: model.vocab().clone(),
            n_ctx: main.n_ctx(),
        },
    );
    // The multi-sequence context for fill-in candidates is made on first use (fill sizes it).
    let mut batch: Option<Session<'_>> = None;
    while let Some(job) = jobs.take() {
        if jobs.superseded(&job) {
            continue;
        }
        match &job {
            Job::Evaluate {
                generation,
                text,
                view,
            } => {
                let started = Instant::now();
                let tokens = model.tokenize(text);
                let result = main.evaluate(&tokens, *view, &|| jobs.superseded(&job));
                match result {
                    Ok(ev) if ev.cancelled => {}
                    Ok(ev) => send(
                        tx,
                        EngineMsg::Evaluated {
                            generation: *generation,
                            result: Ok(Scored {
                                text: text.clone(),
                                tokens: ev.tokens,
                                rows: ev.rows,
                                n_tokens_total: ev.n_tokens_total,
                                view: *view,
                                elapsed: started.elapsed(),
                                decoded: ev.decoded,
                            }),
                        },
                    ),
                    Err(e) => send(
                        tx,
                        EngineMsg::Evaluated {
                            generation: *generation,
                            result: Err(e.to_string()),
                        },
                    ),
                }
            }
            Job::Fill {
                generation,
                text,
                candidates,
                view,
            } => {
                let g = *generation;
                let started = std::time::Instant::now();
                let mut last = (0, 0);
                let result = crate::fill::fill_text(
                    &model,
                    &mut main,
                    &mut batch,
                    text,
                    candidates,
                    crate::fill::DEFAULT_CANDIDATES,
                    *view,
                    &|| jobs.superseded(&job),
                    &mut |blank, done, total| {
                        last = (done, total);
                        send(
                            tx,
                            EngineMsg::FillProgress {
                                generation: g,
                                blank,
                                done,
                                total,
                            },
                        )
                    },
                );
                let ms = started.elapsed().as_millis();
                match &result {
                    Err(crate::fill::FillError::Cancelled) => tracing::info!(
                        "fill {g} cancelled by newer input after {ms} ms ({}/{} tokens)",
                        last.0,
                        last.1
                    ),
                    Err(e) => tracing::info!("fill {g} failed after {ms} ms: {e}"),
                    Ok(r) => tracing::info!(
                        "fill {g} done in {ms} ms: {} blank(s), {} candidates",
                        r.blanks.len(),
                        r.blanks.iter().map(|b| b.candidates.len()).sum::<usize>()
                    ),
                }
                match result {
                    Err(crate::fill::FillError::Cancelled) => {}
                    other => send(
                        tx,
                        EngineMsg::Filled {
                            generation: g,
                            result: other.map(Box::new).map_err(|e| e.to_string()),
                        },
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::ViewOptions;

    fn eval(g: u64) -> Job {
        Job::Evaluate {
            generation: g,
            text: format!("t{g}"),
            view: ViewOptions::default(),
        }
    }

    #[test]
    fn latest_job_wins_and_older_ones_are_superseded() {
        let slot = JobSlot::default();
        slot.submit(eval(1));
        slot.submit(eval(2));
        slot.submit(eval(3));
        let j = slot.take().unwrap();
        assert_eq!(j, eval(3));
        assert!(!slot.superseded(&j));
        slot.submit(eval(4));
        assert!(slot.superseded(&j));
    }

    #[test]
    fn evaluations_are_taken_before_fills() {
        let slot = JobSlot::default();
        slot.submit(Job::Fill {
            generation: 5,
            text: "a ____".into(),
            candidates: vec![],
            view: ViewOptions::default(),
        });
        slot.submit(eval(5));
        assert_eq!(slot.take().unwrap(), eval(5));
        assert!(matches!(slot.take().unwrap(), Job::Fill { .. }));
    }

    #[test]
    fn shutdown_wakes_a_waiting_worker() {
        let slot = Arc::new(JobSlot::default());
        let s2 = slot.clone();
        let h = std::thread::spawn(move || s2.take());
        std::thread::sleep(std::time::Duration::from_millis(50));
        slot.shutdown();
        assert_eq!(h.join().unwrap(), None);
    }
}
