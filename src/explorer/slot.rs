//! A panel's asynchronous question and answer, latest wins (as gitui's `asyncjob` slots): the
//! text it is about, what it asked and has not had answered, and the answer it holds. Every
//! question goes out with the slot's [`Epoch`]; an answer is taken only with the epoch of the
//! slot as it is now, so an answer for a text (or a model) the panel has moved on from cannot
//! be taken. `forget` (a new text, an ablation) starts a new epoch.
//!
//! An answer that streams in (the trace's grid) is taken piece by piece with `update`, which
//! leaves the question asked until `take` (the last piece) or `settle` (the job stopped).

use std::borrow::Borrow;

use super::worker::protocol::{Epoch, LensRequest};

/// `T` is what the panel's answers are about: the text (a `String`), or the trace's pair.
#[derive(Debug, Clone)]
pub struct Slot<K, A, T = String> {
    epoch: Epoch,
    text: T,
    /// The key answered and its answer.
    answer: Option<(K, A)>,
    /// The key asked and not yet answered.
    asked: Option<K>,
    /// Questions asked so far (the job queue drops the older ones).
    requests: LensRequest,
}

impl<K, A, T: Default> Default for Slot<K, A, T> {
    fn default() -> Self {
        Self {
            epoch: Epoch::default(),
            text: T::default(),
            answer: None,
            asked: None,
            requests: LensRequest::default(),
        }
    }
}

impl<K: PartialEq, A, T: Default> Slot<K, A, T> {
    /// The epoch answers must carry to be taken.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The text the answers are about.
    pub fn text(&self) -> &T {
        &self.text
    }

    /// Whether a question is out and not yet answered in full (nor stopped).
    pub fn is_asked(&self) -> bool {
        self.asked.is_some()
    }

    /// The answer held, with the key it answers.
    pub fn answer(&self) -> Option<&(K, A)> {
        self.answer.as_ref()
    }

    /// Forget the text, the answer and what was asked: answers on their way are dropped.
    pub fn forget(&mut self) {
        self.epoch = self.epoch.next();
        self.text = T::default();
        self.answer = None;
        self.asked = None;
    }

    /// Make the slot about `text`: another text than the slot's is forgotten first (a new
    /// epoch), the same one keeps its answer.
    pub fn about<Q>(&mut self, text: &Q)
    where
        T: Borrow<Q>,
        Q: PartialEq + ToOwned<Owned = T> + ?Sized,
    {
        if self.text.borrow() != text {
            self.forget();
            self.text = text.to_owned();
        }
    }

    /// Ask about `key` of `text` (another text than the slot's is forgotten first), unless
    /// the answer held answers it (`answered(its key, its answer)`) or it is asked already:
    /// the question's request and epoch, for the job.
    pub fn ask<Q>(
        &mut self,
        text: &Q,
        key: K,
        answered: impl FnOnce(&K, &A) -> bool,
    ) -> Option<(LensRequest, Epoch)>
    where
        T: Borrow<Q>,
        Q: PartialEq + ToOwned<Owned = T> + ?Sized,
    {
        self.about(text);
        if self.answer.as_ref().is_some_and(|(k, a)| answered(k, a))
            || self.asked.as_ref() == Some(&key)
        {
            return None;
        }
        self.requests = LensRequest(self.requests.0 + 1);
        self.asked = Some(key);
        Some((self.requests, self.epoch))
    }

    /// Take the answer to `key` asked in `epoch`: `false` (dropped) when the slot has moved
    /// on since.
    pub fn take(&mut self, epoch: Epoch, key: K, answer: A) -> bool {
        if epoch != self.epoch {
            return false;
        }
        if self.asked.as_ref() == Some(&key) {
            self.asked = None;
        }
        self.answer = Some((key, answer));
        true
    }

    /// A piece of an answer asked in `epoch` (the question stays asked): `f` makes the answer
    /// so far from the one held (`None` before the first piece; the key stays the one the
    /// answer had). `false` (dropped) when the slot has moved on since.
    pub fn update(&mut self, epoch: Epoch, f: impl FnOnce(Option<A>) -> A) -> bool
    where
        K: Default,
    {
        if epoch != self.epoch {
            return false;
        }
        let (key, held) = match self.answer.take() {
            Some((k, a)) => (k, Some(a)),
            None => (K::default(), None),
        };
        self.answer = Some((key, f(held)));
        true
    }

    /// The job asked in `epoch` ended without a last piece (it was stopped): the question is
    /// no longer out, the pieces so far stay.
    pub fn settle(&mut self, epoch: Epoch) {
        if epoch == self.epoch {
            self.asked = None;
        }
    }

    /// Stop asking: the request that supersedes the one out, for the job queue to drop it.
    pub fn cancel(&mut self) -> LensRequest {
        self.asked = None;
        self.requests = LensRequest(self.requests.0 + 1);
        self.requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_is_asked_once_and_a_stale_answer_is_dropped() {
        let mut s: Slot<usize, &str> = Slot::default();
        let (r1, e1) = s.ask("a", 1, |_, _| false).expect("asked");
        assert_eq!(r1, LensRequest(1));
        assert!(s.ask("a", 1, |_, _| false).is_none(), "asked already");
        assert!(s.take(e1, 1, "one"));
        assert_eq!(s.answer(), Some(&(1, "one")));
        assert!(s.ask("a", 1, |k, _| *k == 1).is_none(), "answered");
        // A new text: a new epoch; the old text's answers are dropped.
        let (r2, e2) = s.ask("b", 1, |k, _| *k == 1).expect("a new text is asked");
        assert_eq!(r2, LensRequest(2));
        assert_ne!(e1, e2);
        assert!(s.answer().is_none());
        assert!(!s.take(e1, 1, "stale"));
        assert!(s.answer().is_none());
        s.forget();
        assert!(!s.take(e2, 1, "forgotten"));
        assert_eq!(s.text(), "");
    }

    #[test]
    fn a_streamed_answer_stays_asked_until_its_last_piece_or_a_stop() {
        let mut s: Slot<(), Vec<u32>, (String, String)> = Slot::default();
        let pair = ("a".to_owned(), "b".to_owned());
        let (_, e) = s.ask(&pair, (), |_, _| false).expect("asked");
        assert!(s.update(e, |held| [held.unwrap_or_default(), vec![1]].concat()));
        assert!(s.update(e, |held| [held.unwrap_or_default(), vec![2]].concat()));
        assert!(s.is_asked(), "pieces leave it asked");
        assert_eq!(s.answer().map(|(_, a)| a.clone()), Some(vec![1, 2]));
        s.settle(e);
        assert!(!s.is_asked(), "stopped");
        assert_eq!(s.answer().map(|(_, a)| a.len()), Some(2), "the pieces stay");
        // Asked again: the same pair keeps its pieces; a cancel supersedes the request.
        let (r, e2) = s.ask(&pair, (), |_, _| false).expect("asked again");
        assert_eq!(e, e2);
        assert!(s.cancel() > r);
        assert!(!s.is_asked());
        // Another pair: a new epoch, the old pieces dropped.
        let other = ("a".to_owned(), "c".to_owned());
        let (_, e3) = s.ask(&other, (), |_, _| false).expect("asked");
        assert_ne!(e3, e);
        assert!(!s.update(e, |_| vec![9]));
        assert!(s.answer().is_none());
        s.settle(e);
        assert!(
            s.is_asked(),
            "a stale stop does not settle the new question"
        );
    }
}
