//! A panel's asynchronous question and answer, latest wins (as gitui's `asyncjob` slots): the
//! text it is about, what it asked and has not had answered, and the answer it holds. Every
//! question goes out with the slot's [`Epoch`]; an answer is taken only with the epoch of the
//! slot as it is now, so an answer for a text (or a model) the panel has moved on from cannot
//! be taken. `forget` (a new text, an ablation) starts a new epoch.

use super::worker::protocol::{Epoch, LensRequest};

#[derive(Debug, Clone)]
pub struct Slot<K, A> {
    epoch: Epoch,
    text: String,
    /// The key answered and its answer.
    answer: Option<(K, A)>,
    /// The key asked and not yet answered.
    asked: Option<K>,
    /// Questions asked so far (the job queue drops the older ones).
    requests: LensRequest,
}

impl<K, A> Default for Slot<K, A> {
    fn default() -> Self {
        Self {
            epoch: Epoch::default(),
            text: String::new(),
            answer: None,
            asked: None,
            requests: LensRequest::default(),
        }
    }
}

impl<K: PartialEq, A> Slot<K, A> {
    /// The epoch answers must carry to be taken.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The text the answers are about.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The answer held, with the key it answers.
    pub fn answer(&self) -> Option<&(K, A)> {
        self.answer.as_ref()
    }

    /// Forget the text, the answer and what was asked: answers on their way are dropped.
    pub fn forget(&mut self) {
        self.epoch = self.epoch.next();
        self.text.clear();
        self.answer = None;
        self.asked = None;
    }

    /// Ask about `key` of `text` (another text than the slot's is forgotten first), unless
    /// the answer held answers it (`answered(its key, its answer)`) or it is asked already:
    /// the question's request and epoch, for the job.
    pub fn ask(
        &mut self,
        text: &str,
        key: K,
        answered: impl FnOnce(&K, &A) -> bool,
    ) -> Option<(LensRequest, Epoch)> {
        if self.text != text {
            self.forget();
            self.text = text.to_owned();
        }
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
}
