//! The latest-wins job queue between the explorer and its engine thread.
//!
//! One slot per [`JobKind`], each keeping only the newest job of its kind ("keeps overwriting
//! the next job until it is actually taken", as gitui's `AsyncSingleJob` puts it): a burst of
//! keystrokes becomes one evaluation. Kinds are taken in their order (their priority). A running
//! job asks [`JobQueue::superseded`] between decodes and stops early once a newer job of its
//! kind was submitted, or its kind was cancelled.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::protocol::{Cancel, Job, JobKind, Ticket};

#[derive(Default)]
struct Slots {
    pending: BTreeMap<JobKind, Job>,
    /// Per kind: running work with an older ticket than this is stale.
    newest: BTreeMap<JobKind, Ticket>,
    shutdown: bool,
    /// Workers blocked in `take` (for tests that must know a worker is really waiting).
    waiting: usize,
}

#[derive(Default)]
pub struct JobQueue {
    slots: Mutex<Slots>,
    wake: Condvar,
}

impl JobQueue {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `job`, replacing a waiting job of its kind, and mark older running work of its
    /// kind as superseded.
    pub fn submit(&self, job: Job) {
        let mut s = self.lock();
        let kind = job.kind();
        raise(&mut s.newest, kind, job.ticket());
        s.pending.insert(kind, job);
        drop(s);
        self.wake.notify_all();
    }

    /// Drop the waiting jobs and supersede the running work that `cancel` names (what they
    /// were for is gone).
    pub fn cancel(&self, cancel: Cancel) {
        let mut s = self.lock();
        for (kind, ticket) in cancel.targets() {
            if s.pending
                .get(&kind)
                .is_some_and(|j| ticket.supersedes(j.ticket()))
            {
                s.pending.remove(&kind);
            }
            raise(&mut s.newest, kind, ticket);
        }
    }

    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.wake.notify_all();
    }

    /// Block until a job is there (the first kind first) or the queue shuts down.
    pub fn take(&self) -> Option<Job> {
        let mut s = self.lock();
        loop {
            if s.shutdown {
                return None;
            }
            if let Some(kind) = s.pending.keys().next().copied() {
                return s.pending.remove(&kind);
            }
            s.waiting += 1;
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
            s.waiting -= 1;
        }
    }

    /// Whether `job`'s work is no longer wanted: shutdown, a newer job of its kind, or a cancel.
    pub fn superseded(&self, job: &Job) -> bool {
        let s = self.lock();
        s.shutdown
            || s.newest
                .get(&job.kind())
                .is_some_and(|&t| t.supersedes(job.ticket()))
    }

    /// Whether a job of a kind before `kind` (a more urgent one) is waiting: long work of
    /// `kind` that can be resumed pauses for it.
    pub fn urgent_waiting(&self, kind: JobKind) -> bool {
        self.lock().pending.keys().any(|&k| k < kind)
    }

    /// Whether an evaluation (a keystroke) or a change of the model waits: what stops a
    /// trace, which other jobs wait for.
    pub fn evaluation_waiting(&self) -> bool {
        self.lock()
            .pending
            .keys()
            .any(|k| matches!(k, JobKind::Intervene | JobKind::Evaluate(_)))
    }

    /// How many workers are blocked in [`JobQueue::take`].
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

/// Keep the newest ticket of `kind`.
fn raise(newest: &mut BTreeMap<JobKind, Ticket>, kind: JobKind, ticket: Ticket) {
    match newest.get(&kind) {
        Some(&t) if !ticket.supersedes(t) => {}
        _ => {
            newest.insert(kind, ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::analysis::stats::ViewOptions;
    use crate::engine::fill::FillRequest;
    use crate::explorer::worker::protocol::{Epoch, LensRequest, TextGen};

    fn eval(g: u64) -> Job {
        eval_of(0, g)
    }

    fn eval_of(sentence: usize, g: u64) -> Job {
        Job::Evaluate {
            sentence,
            generation: TextGen(g),
            text: format!("t{g}"),
            view: ViewOptions::default(),
            watch: vec![],
            readers: false,
        }
    }

    fn fill(g: u64) -> Job {
        Job::Fill {
            generation: TextGen(g),
            request: FillRequest {
                text: "a ____".into(),
                user_candidates: vec![],
                n_candidates: 50,
                view: ViewOptions::default(),
                search: crate::analysis::search::Budget::Words(0),
                ask: false,
                word_list: None,
                prune: true,
                shared_prefix: true,
            },
        }
    }

    #[test]
    fn latest_job_wins_and_older_ones_are_superseded() {
        let q = JobQueue::default();
        q.submit(eval(1));
        q.submit(eval(2));
        q.submit(eval(3));
        let j = q.take().unwrap();
        assert_eq!(j, eval(3));
        assert!(!q.superseded(&j));
        q.submit(eval(4));
        assert!(q.superseded(&j));
    }

    #[test]
    fn kinds_are_taken_in_priority_order() {
        let q = JobQueue::default();
        q.submit(fill(5));
        q.submit(eval(5));
        assert_eq!(q.take().unwrap(), eval(5));
        assert_eq!(q.take().unwrap(), fill(5));
    }

    #[test]
    fn long_work_knows_when_more_urgent_work_waits() {
        let q = JobQueue::default();
        assert!(!q.urgent_waiting(JobKind::Lens));
        q.submit(fill(1));
        assert!(!q.urgent_waiting(JobKind::Lens), "a fill is less urgent");
        q.submit(eval(2));
        assert!(q.urgent_waiting(JobKind::Lens));
        assert!(
            !q.urgent_waiting(JobKind::Evaluate(0)),
            "nothing is before an evaluation"
        );
    }

    #[test]
    fn a_cancel_supersedes_running_work_and_drops_waiting_work_of_that_kind_only() {
        let q = JobQueue::default();
        q.submit(fill(3));
        let running = q.take().unwrap();
        q.submit(fill(4));
        q.submit(eval(4));
        q.cancel(Cancel::Fill(TextGen(6)));
        assert!(q.superseded(&running));
        assert_eq!(q.take().unwrap(), eval(4), "the evaluation is kept");
        let (tx, rx) = std::sync::mpsc::channel();
        let q = Arc::new(q);
        let q2 = q.clone();
        std::thread::spawn(move || tx.send(q2.take()));
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the waiting fill was dropped"
        );
        q.shutdown();
    }

    fn lens(r: u64) -> Job {
        Job::Lens {
            request: LensRequest(r),
            epoch: Epoch(1),
            text: "The cat".into(),
            view: ViewOptions::default(),
            first: 0,
            hw: false,
            skip: vec![],
        }
    }

    /// Defect: clearing the line cancelled every kind with the keystroke generation (say 30),
    /// and lens jobs, which count their own requests (3, 4, …), all looked older than it: the
    /// lens never appeared again. Counters of two kinds no longer compare.
    #[test]
    fn clearing_the_texts_leaves_later_lens_requests_alone() {
        let q = JobQueue::default();
        q.submit(lens(2));
        q.submit(eval(29));
        q.cancel(Cancel::Texts(0, TextGen(30)));
        assert_eq!(
            q.take().unwrap(),
            lens(2),
            "a lens request is not a text's job"
        );
        q.cancel(Cancel::Lens(LensRequest(3)));
        let later = lens(3);
        q.submit(later.clone());
        assert!(!q.superseded(&later));
        assert_eq!(q.take().unwrap(), later);
        q.submit(eval(31));
        assert!(
            !q.superseded(&later),
            "keystrokes do not supersede the lens"
        );
        q.submit(lens(4));
        assert!(q.superseded(&later));
    }

    /// The worker must really be blocked in `take` before shutdown (not merely started), and
    /// must come back: a lost wake-up fails the test by timing out instead of hanging it.
    #[test]
    fn shutdown_wakes_a_waiting_worker() {
        let q = Arc::new(JobQueue::default());
        let q2 = q.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(q2.take()));
        let t0 = std::time::Instant::now();
        while q.waiting() == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the worker never waited"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        q.shutdown();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(None));
    }

    #[test]
    fn each_sentence_keeps_its_own_evaluation_slot() {
        let q = JobQueue::default();
        q.submit(eval_of(0, 5));
        q.submit(eval_of(1, 6));
        // Clearing sentence 1 leaves sentence 0's evaluation alone.
        q.cancel(Cancel::Texts(1, TextGen(7)));
        let first = q.take().unwrap();
        assert_eq!(first, eval_of(0, 5));
        assert!(!q.superseded(&first));
        q.submit(eval_of(1, 8));
        q.submit(eval_of(0, 9));
        assert_eq!(q.take().unwrap(), eval_of(0, 9));
        assert_eq!(q.take().unwrap(), eval_of(1, 8));
    }
}
