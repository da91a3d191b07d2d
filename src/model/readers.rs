//! One hooked decode, many readers: the logit lens's residual streams, the attention rows and
//! attribution's parts are read by one composite [`Tap`] from one decode of a text, as
//! llama.cpp's imatrix tool collects its statistics with `cb_eval` in the decode that scores.
//!
//! A reader ([`Lens`](super::lens::Lens), [`Attention`](super::attention::Attention),
//! [`Attributor`](super::attribution::Attributor)) made [`on`](Shared) a shared decode joins
//! it for good: every later decode of that context reads for it too, so a front end that asks
//! a text's lens, attention and attribution decodes it once. Each reader keeps its own
//! analysis (the lens's self-check, attention's digest, attribution's split) and reads its
//! rows and llama.cpp's logits from the shared decode, after checking that the decode is of
//! its text.
//!
//! Each reader covers the first tokens of a text up to its own limit (a decode covers the
//! largest limit among its readers): a row depends on its position's tokens only (the pinned
//! kernels, `model::kernels`), so a reader's numbers are those of a decode of its own.

use std::any::Any;
use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use super::hook::{Hooked, NodeName, Tap, Tensor};
use super::loader::{Model, ModelError};
use super::plan::MAX_DECODE;
use super::session::{summarize_logits, Evaluation};
use crate::analysis::stats::ViewOptions;

/// The readers one decode can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    Lens = 0,
    Attention = 1,
    Attribution = 2,
}

/// A reader's tap: what it reads of a decode, readied before each.
pub(super) trait Reader: Tap + Any {
    /// Read the rows of `tokens` (the first positions of the next decode), forgetting the
    /// last decode's.
    fn prepare(&mut self, tokens: &[u32]);
}

/// The composite tap: each reader that has joined, and whether the decode under way reads
/// for it.
#[derive(Default)]
pub(super) struct Readers {
    slots: [Option<Box<dyn Reader>>; 3],
    /// Per [`Which`]: read in this decode.
    on: [bool; 3],
}

impl Readers {
    /// `which`'s tap, of the type its reader put there.
    pub(super) fn get<T: Reader>(&self, which: Which) -> Option<&T> {
        let r: &dyn Any = self.slots[which as usize].as_deref()?;
        r.downcast_ref()
    }

    pub(super) fn get_mut<T: Reader>(&mut self, which: Which) -> Option<&mut T> {
        let r: &mut dyn Any = self.slots[which as usize].as_deref_mut()?;
        r.downcast_mut()
    }

    fn set(&mut self, which: Which, tap: Box<dyn Reader>) {
        self.slots[which as usize] = Some(tap);
    }

    /// The taps this decode reads for.
    fn active(&mut self) -> impl Iterator<Item = &mut dyn Reader> {
        let on = self.on;
        self.slots
            .iter_mut()
            .zip(on)
            .filter(|(_, on)| *on)
            .filter_map(|(s, _)| s.as_deref_mut())
    }
}

impl Tap for Readers {
    fn wants(&mut self, node: NodeName<'_>) -> bool {
        self.active().any(|t| t.wants(node))
    }

    fn read(&mut self, node: NodeName<'_>, tensor: &Tensor<'_>) {
        for t in self.active() {
            if t.wants(node) {
                t.read(node, tensor);
            }
        }
    }

    fn wants_named(&mut self, name: &str) -> bool {
        self.active().any(|t| t.wants_named(name))
    }

    fn read_named(&mut self, name: &str, tensor: &Tensor<'_>) {
        for t in self.active() {
            if t.wants_named(name) {
                t.read_named(name, tensor);
            }
        }
    }
}

/// A shared hooked decode: its context (made on the first decode, and again larger when a
/// reader with a larger limit joins), the readers, and what the last decode was.
pub(super) struct Probe<'m> {
    model: &'m Model,
    ctx: Option<Hooked<'m, Readers>>,
    /// The readers while there is no context.
    idle: Readers,
    /// Per [`Which`]: joined, its token limit.
    joined: [Option<usize>; 3],
    /// The tokens of the last decode (empty: none, or it failed).
    decoded: Vec<u32>,
    /// Per [`Which`]: whether its reader's rows are of `decoded`.
    fresh: [bool; 3],
    /// Decodes made so far.
    decodes: usize,
    /// The last-layer self-check a reader made of the last decode, for the others.
    checked: Option<Checked>,
}

/// A self-check of the last decode's rows of one node: our final norm and W, with
/// llama.cpp's dot product, against llama.cpp's own distribution at `temp`, over the first
/// `covered` positions. The largest |Δp| is `worst`: a bound on each position's.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Checked {
    pub node: String,
    pub temp: f32,
    pub covered: usize,
    pub worst: f64,
}

impl<'m> Probe<'m> {
    pub(super) fn model(&self) -> &'m Model {
        self.model
    }

    pub(super) fn readers(&self) -> &Readers {
        match &self.ctx {
            Some(c) => c.tap(),
            None => &self.idle,
        }
    }

    pub(super) fn readers_mut(&mut self) -> &mut Readers {
        match &mut self.ctx {
            Some(c) => c.tap_mut(),
            None => &mut self.idle,
        }
    }

    /// `which` joins with its tap and `limit` tokens (its rows are read from every later
    /// decode).
    pub(super) fn join(&mut self, which: Which, tap: Box<dyn Reader>, limit: usize) {
        self.readers_mut().set(which, tap);
        self.joined[which as usize] = Some(limit.max(1));
        self.fresh[which as usize] = false;
    }

    /// The tokens `which` covers of a text of `tokens`.
    pub(super) fn covers(&self, which: Which, tokens: &[u32]) -> usize {
        tokens.len().min(self.joined[which as usize].unwrap_or(0))
    }

    /// Tokens a decode of `tokens` takes: as many as the largest limit among the readers.
    fn span(&self, tokens: &[u32]) -> usize {
        let most = self.joined.iter().flatten().copied().max().unwrap_or(0);
        tokens.len().min(most)
    }

    /// Whether `which`'s rows are of `tokens` (its covered prefix, from a decode of them).
    pub(super) fn holds(&self, which: Which, tokens: &[u32]) -> bool {
        self.fresh[which as usize] && !self.decoded.is_empty() && {
            let n = self.span(tokens);
            self.decoded == tokens[..n]
        }
    }

    /// `which`'s rows are no longer wanted as they are (taken, or asked for differently).
    pub(super) fn spend(&mut self, which: Which) {
        self.fresh[which as usize] = false;
    }

    /// Make sure `which`'s rows are of `tokens`: decode them once for every reader that has
    /// joined, unless the last decode already served it.
    pub(super) fn serve(&mut self, which: Which, tokens: &[u32]) -> Result<(), ModelError> {
        if self.joined[which as usize].is_none() {
            return Err(ModelError::Decode(
                "a reader asked a decode it never joined".into(),
            ));
        }
        if self.holds(which, tokens) {
            return Ok(());
        }
        self.decode(tokens)
    }

    /// Make sure the last decode is of `tokens` and served every reader that has joined.
    fn serve_every(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        let all = [Which::Lens, Which::Attention, Which::Attribution];
        let joined = self.joined;
        if all
            .into_iter()
            .filter(|w| joined[*w as usize].is_some())
            .all(|w| self.holds(w, tokens))
        {
            return Ok(());
        }
        self.decode(tokens)
    }

    /// Whether the last decode was of all of `tokens`: llama.cpp's logits are still their
    /// rows (whether or not a reader has taken its own since).
    fn decoded_all(&self, tokens: &[u32]) -> bool {
        !self.decoded.is_empty() && self.decoded == tokens
    }

    /// One decode of `tokens` (as many as [`Probe::span`] says) for every reader that has
    /// joined.
    fn decode(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::Empty);
        }
        let n = self.span(tokens);
        self.ensure_context(n)?;
        let all = [Which::Lens, Which::Attention, Which::Attribution];
        let joined = self.joined;
        let readers = self.readers_mut();
        readers.on = joined.map(|j| j.is_some());
        for w in all.into_iter().filter(|w| joined[*w as usize].is_some()) {
            let covered = n.min(joined[w as usize].unwrap_or(0));
            if let Some(t) = readers.slots[w as usize].as_deref_mut() {
                t.prepare(&tokens[..covered]);
            }
        }
        self.decoded.clear();
        self.fresh = [false; 3];
        self.checked = None;
        let ctx = self.ctx.as_mut().ok_or(ModelError::Empty)?;
        self.decodes += 1;
        tracing::debug!("one hooked decode of {n} tokens for {:?}", self.joined);
        ctx.decode(&tokens[..n])?;
        self.decoded = tokens[..n].to_vec();
        self.fresh = joined.map(|j| j.is_some());
        Ok(())
    }

    /// A context of at least `n` tokens, the readers moved into it from a smaller one.
    fn ensure_context(&mut self, n: usize) -> Result<(), ModelError> {
        if self.ctx.as_ref().is_some_and(|c| c.n_ctx() >= n) {
            return Ok(());
        }
        let most = self
            .joined
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(n)
            .max(n);
        let readers = match self.ctx.take() {
            Some(mut old) => std::mem::take(old.tap_mut()),
            None => std::mem::take(&mut self.idle),
        };
        // The readers come back to `idle` if the context cannot be made.
        let n_ctx = u32::try_from(most).unwrap_or(u32::MAX);
        match Hooked::new(self.model, n_ctx, Readers::default()) {
            Ok(mut ctx) => {
                *ctx.tap_mut() = readers;
                self.ctx = Some(ctx);
                Ok(())
            }
            Err(e) => {
                self.idle = readers;
                Err(ModelError::Decode(e))
            }
        }
    }

    /// Note the self-check a reader made of the last decode's rows (forgotten at the next
    /// decode), so that another reader of the same rows need not make it again.
    pub(super) fn note_check(&mut self, check: Checked) {
        self.checked = Some(check);
    }

    /// The self-check noted for the last decode, if any.
    pub(super) fn checked(&self) -> Option<&Checked> {
        self.checked.as_ref()
    }

    /// llama.cpp's logits of `position` of the last decode.
    ///
    /// # Panics
    /// Without a decode covering `position` (the readers check [`Probe::holds`] first).
    pub(super) fn logits(&self, position: usize) -> &[f32] {
        self.ctx
            .as_ref()
            .expect("a reader reads logits only after its decode")
            .logits(position)
    }
}

/// A handle on a shared decode: readers made on one handle (or its clones) share it.
#[derive(Clone)]
pub struct Shared<'m>(Rc<RefCell<Probe<'m>>>);

impl<'m> Shared<'m> {
    /// A shared decode of `model` (its context is made on the first decode).
    pub fn new(model: &'m Model) -> Self {
        Self(Rc::new(RefCell::new(Probe {
            model,
            ctx: None,
            idle: Readers::default(),
            joined: [None; 3],
            decoded: Vec::new(),
            fresh: [false; 3],
            decodes: 0,
            checked: None,
        })))
    }

    pub(super) fn get(&self) -> Ref<'_, Probe<'m>> {
        self.0.borrow()
    }

    pub(super) fn get_mut(&self) -> RefMut<'_, Probe<'m>> {
        self.0.borrow_mut()
    }

    /// The model it decodes.
    pub fn model(&self) -> &'m Model {
        self.get().model()
    }

    /// `tokens` evaluated from the decode the readers read, as a [`Session`](super::Session)
    /// evaluates them (the rows summarised the same way, with `watch`'s statistics), so a
    /// front end that asks readers of a text needs no decode of its own. `None` where this
    /// decode is not the one a session makes: texts longer than one of its decodes
    /// ([`MAX_DECODE`]) or than the readers cover. Every position of a
    /// one-decode text is decoded in one batch from an empty cache either way (a session's
    /// reuse of a cached prefix is the layout self-check's to prove equal).
    pub fn evaluate(
        &self,
        tokens: &[u32],
        view: ViewOptions,
        watch: &[u32],
    ) -> Result<Option<Evaluation>, ModelError> {
        let n = tokens.len();
        let mut p = self.get_mut();
        if n == 0 || n > MAX_DECODE || p.span(tokens) < n {
            return Ok(None);
        }
        if !p.decoded_all(tokens) {
            p.serve_every(tokens)?;
        }
        let rows = (0..n)
            .map(|i| summarize_logits(p.logits(i), view, tokens.get(i + 1).copied(), watch))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Evaluation {
            tokens: tokens.to_vec(),
            rows,
            n_tokens_total: n,
            decoded: n,
            cancelled: false,
        }))
    }

    /// [`Shared::evaluate`] when it costs no decode: the last decode was of `tokens`.
    /// `None` otherwise.
    pub fn evaluate_held(
        &self,
        tokens: &[u32],
        view: ViewOptions,
        watch: &[u32],
    ) -> Result<Option<Evaluation>, ModelError> {
        if !self.get().decoded_all(tokens) {
            return Ok(None);
        }
        self.evaluate(tokens, view, watch)
    }

    /// How many decodes it has made (each serving every reader that had joined).
    pub fn decodes(&self) -> usize {
        self.get().decodes
    }
}
