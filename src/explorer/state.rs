//! The explorer's state: everything the screen is drawn from. Changed only by
//! [`crate::explorer::update`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::analysis::blanks::{find_blanks, FillReport};
use crate::analysis::lens::{HwReport, LensStatus};
use crate::analysis::search::Budget;
use crate::analysis::stats::{RowSummary, ViewOptions};
use crate::analysis::vocab::Vocab;
use crate::engine::EngineError;
use crate::explorer::editor::{History, LineEditor};
use crate::explorer::slot::Slot;
use crate::explorer::worker::protocol::{Epoch, LensRequest, Scored, TextGen};
use crate::model::ModelInfo;

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Loading { progress: f32 },
    Ready,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// GLTR buckets: top-1, top-10, top-100, beyond.
    Buckets,
    /// A continuous scale over log p.
    Heat,
    /// With a second model: how far its distribution is from the first (KL).
    Divergence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Text,
    Candidates,
    /// The watch-list line (F7).
    Watch,
    /// The ablation line (Ctrl-K): the parts to switch off. It edits in the watch-list's
    /// line editor (one status-bar line is open at a time).
    Ablate,
}

/// What is switched off in the model, as applied and as asked for.
#[derive(Debug, Clone, Default)]
pub struct AblationState {
    /// The spec in force (`--ablate` syntax; empty: nothing).
    pub spec: String,
    /// A spec sent to the engine and not yet applied.
    pub pending: Option<String>,
    pub requests: LensRequest,
}

/// What the right-hand (or lower) panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidePanel {
    /// Entropy and surprisal across the sentence.
    Sentence,
    /// Fill-in candidates for the blanks of the text.
    Fill,
}

/// What the inspection panels show (F9, F10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inspect {
    #[default]
    Off,
    /// The logit lens: a grid of layers × positions, and the selected position by layer.
    Lens,
    /// H·W at the selected position.
    Hw,
    /// Attention at the selected position: layers × heads, the selected head's row.
    Attention,
    /// Direct logit attribution at the selected position: each component's share.
    Attribution,
    /// Causal tracing of the pair: layers × positions of sentence B.
    Trace,
    /// The corpus report's positions (`--report`), beside the distribution.
    Report,
}

impl Inspect {
    /// Whether the panel reads the text's hooked decode (the lens, H·W, attention and
    /// attribution do; the trace and the report do not).
    pub fn reads_the_decode(self) -> bool {
        matches!(
            self,
            Inspect::Lens | Inspect::Hw | Inspect::Attention | Inspect::Attribution
        )
    }
}

/// The logit lens of the text shown, as it arrives from the engine: a [`Slot`] about the
/// text and view, asked for (first position, H·W), its answer streaming in piece by piece.
#[derive(Debug, Clone, Default)]
pub struct LensState {
    pub slot: Slot<(usize, bool), LensAnswer, Option<(String, ViewOptions)>>,
}

/// The lens so far.
#[derive(Debug, Clone, Default)]
pub struct LensAnswer {
    /// Available or why not (with the self-check's result).
    pub status: Option<LensStatus>,
    /// Every layer at a position: `columns[&i][ℓ]` = layer ℓ of p_i.
    pub columns: BTreeMap<usize, Vec<RowSummary>>,
    pub hw: Option<Box<HwReport>>,
    pub error: Option<EngineError>,
}

impl LensState {
    /// The epoch answers must carry.
    pub fn epoch(&self) -> Epoch {
        self.slot.epoch()
    }

    /// The text the lens is of.
    pub fn text(&self) -> &str {
        self.slot.text().as_ref().map_or("", |(t, _)| t)
    }

    fn answer(&self) -> Option<&LensAnswer> {
        self.slot.answer().map(|(_, a)| a)
    }

    pub fn status(&self) -> Option<&LensStatus> {
        self.answer()?.status.as_ref()
    }

    pub fn columns(&self) -> &BTreeMap<usize, Vec<RowSummary>> {
        static NONE: BTreeMap<usize, Vec<RowSummary>> = BTreeMap::new();
        self.answer().map_or(&NONE, |a| &a.columns)
    }

    pub fn hw(&self) -> Option<&HwReport> {
        self.answer()?.hw.as_deref()
    }

    pub fn error(&self) -> Option<&EngineError> {
        self.answer()?.error.as_ref()
    }

    /// Positions the lens reaches: all of the text's, or the first `positions` it covers.
    pub fn covered(&self, n_tokens: usize) -> usize {
        self.status()
            .and_then(|s| s.positions)
            .map_or(n_tokens, |p| p.min(n_tokens))
    }
}

/// The fill panel's state.
#[derive(Debug, Clone, Default)]
pub struct FillState {
    pub generation: TextGen,
    /// (blank, settled, planned) while a fill runs.
    pub progress: Option<(usize, usize, usize)>,
    /// Vocabulary words searched so far by the running fill.
    pub searched: usize,
    pub report: Option<Box<FillReport>>,
    pub error: Option<EngineError>,
    pub candidates: Vec<String>,
    pub input: LineEditor,
    pub input_scroll: usize,
}

/// A loaded model as the explorer knows it.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub info: ModelInfo,
    pub vocab: Arc<Vocab>,
    /// Tokens one text may have (the context size).
    pub n_ctx: usize,
    /// The model compared with (`--vs`).
    pub second: Option<ModelInfo>,
}

/// The pair view's deciding position: the first aligned token whose |Δ logprob| exceeds this
/// (nats), as `pairs --threshold` defaults to.
pub const PAIR_THRESHOLD: f64 = 1.0;

/// The temperatures the view steps through.
pub const TEMPS: [f32; 12] = [0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0];
pub const MAX_K: usize = 50;

/// One sentence of the explorer: its line, its evaluations and fill, the watched words at its
/// selected position. The explorer holds one, or two for a minimal pair.
#[derive(Debug, Clone, Default)]
pub struct Sentence {
    pub editor: LineEditor,
    pub input_scroll: usize,
    /// Generation of the newest evaluation asked for (from the app's one clock, so that
    /// tickets of different sentences never collide).
    pub generation: TextGen,
    /// Results of generations below this are dropped: the generation shown, or the one at
    /// which the line was cleared.
    pub shown_generation: TextGen,
    /// The newest evaluation received (possibly of an older text: then the view is stale).
    pub scored: Option<Scored>,
    pub eval_error: Option<EngineError>,
    pub fill: FillState,
    /// Words of several tokens: their probability as the continuation at one position
    /// (generation, position, values), computed on request for the selected position.
    pub watch_at: Option<(TextGen, usize, Vec<crate::analysis::watch::WatchValue>)>,
}

#[derive(Debug, Clone)]
pub struct App {
    pub phase: Phase,
    pub model: Option<LoadedModel>,
    /// The sentences: one, or two (a minimal pair, Ctrl-P).
    pub sentences: Vec<Sentence>,
    /// The sentence being edited; the strip, panels, lens, watch and words are about it.
    pub active: usize,
    /// The one clock every sentence's generations come from.
    pub clock: TextGen,
    pub history: History,
    pub view: ViewOptions,
    /// How much of the vocabulary a fill searches.
    pub search: Budget,
    /// Selected chip: token j (showing p_{j-1}), or `n` = the prediction after the last token.
    pub selected: usize,
    /// Keep the selection on the "next" chip while typing.
    pub follow_end: bool,
    pub color: ColorMode,
    pub no_color: bool,
    pub help: bool,
    pub focus: Focus,
    pub size: (u16, u16),
    pub warning: Option<String>,
    /// The model's file name, shown while it loads.
    pub model_name: String,
    /// Where the log goes, named when the engine fails.
    pub log_file: Option<String>,
    /// Words watched at every position (`--watch`, F7).
    pub watch: Vec<String>,
    /// The watch-list line while it is edited.
    pub watch_input: LineEditor,
    /// Tokens grouped into words in the strip (F8).
    pub word_mode: bool,
    /// A one-line message for the status bar (an export's path).
    pub notice: Option<String>,
    /// An RPC server was lost: the model is gone, what is shown stays readable.
    pub lost: Option<String>,
    /// The lens or H·W panels (F9, F10).
    pub inspect: Inspect,
    pub lens: LensState,
    pub attention: crate::explorer::attention::panel::AttentionPanel,
    pub attribution: crate::explorer::attribution::panel::AttributionPanel,
    pub trace: crate::explorer::trace::panel::TracePanel,
    pub ablation: AblationState,
    /// The corpus report (`--report FILE`), when one was given.
    pub report: Option<crate::explorer::report::panel::ReportPanel>,
    pub quit: bool,
}

impl App {
    pub fn new(view: ViewOptions, history: Vec<String>, no_color: bool) -> Self {
        Self {
            phase: Phase::Loading { progress: 0.0 },
            model: None,
            sentences: vec![Sentence::default()],
            active: 0,
            clock: TextGen::default(),
            history: History::new(history, 1000),
            view,
            search: crate::engine::search::explorer_budget(),
            selected: 0,
            follow_end: true,
            color: ColorMode::Buckets,
            no_color,
            help: false,
            focus: Focus::Text,
            size: (80, 24),
            warning: None,
            model_name: "model".into(),
            log_file: None,
            watch: Vec::new(),
            watch_input: LineEditor::new(),
            word_mode: false,
            notice: None,
            lost: None,
            inspect: Inspect::Off,
            lens: LensState::default(),
            attention: Default::default(),
            attribution: Default::default(),
            trace: Default::default(),
            ablation: Default::default(),
            report: None,
            quit: false,
        }
    }

    /// The sentence being edited.
    pub fn sentence(&self) -> &Sentence {
        &self.sentences[self.active]
    }

    pub fn sentence_mut(&mut self) -> &mut Sentence {
        &mut self.sentences[self.active]
    }

    /// The active sentence's line.
    pub fn editor(&self) -> &LineEditor {
        &self.sentence().editor
    }

    /// The active sentence's newest evaluation.
    pub fn scored(&self) -> Option<&Scored> {
        self.sentence().scored.as_ref()
    }

    /// The active sentence's fill.
    pub fn fill(&self) -> &FillState {
        &self.sentence().fill
    }

    /// Both sentences of a minimal pair (A, B), when the second line is open.
    pub fn pair(&self) -> Option<(&Sentence, &Sentence)> {
        match &self.sentences[..] {
            [a, b, ..] => Some((a, b)),
            _ => None,
        }
    }

    /// The minimal pair compared as `pairs` compares it (totals, Δ, the aligned tokens), from
    /// the newest evaluation of each line; `None` until both have one.
    pub fn pair_report(&self) -> Option<crate::analysis::pairs::PairReport> {
        use crate::analysis::pairs::{compare, Reduction, Side};
        let (a, b) = self.pair()?;
        let (sa, sb) = (a.scored.as_ref()?, b.scored.as_ref()?);
        fn side(s: &Scored) -> Side<'_> {
            Side {
                text: &s.text,
                tokens: &s.tokens,
                rows: &s.rows,
            }
        }
        Some(compare(
            self.vocab()?,
            &side(sa),
            &side(sb),
            Reduction::Sum,
            PAIR_THRESHOLD,
            Vec::new(),
        ))
    }

    /// The view shows an older text (or older settings) than the one typed.
    pub fn stale(&self) -> bool {
        self.stale_at(self.active)
    }

    /// Sentence `n`'s view is older than its text or the settings.
    pub fn stale_at(&self, n: usize) -> bool {
        let s = &self.sentences[n];
        match &s.scored {
            Some(sc) => sc.text != self.display_text_of(n) || sc.view != self.view,
            None => !s.editor.text().is_empty(),
        }
    }

    /// The text the strip, the distribution panel and the chart describe: the typed text with
    /// each blank holding its best candidate once the fill of this text is done (so they are
    /// about the sentence the user reads); the typed text itself before that.
    pub fn display_text(&self) -> String {
        self.display_text_of(self.active)
    }

    /// [`App::display_text`] of sentence `n`.
    pub fn display_text_of(&self, n: usize) -> String {
        self.filled(n).0
    }

    /// The byte ranges of the fills in [`App::display_text`].
    pub fn fill_spans(&self) -> Vec<(usize, usize)> {
        self.filled(self.active).1
    }

    fn filled(&self, n: usize) -> (String, Vec<(usize, usize)>) {
        let s = &self.sentences[n];
        let text = s.editor.text();
        match &s.fill.report {
            Some(r) if r.text == text && s.fill.progress.is_none() && !r.blanks.is_empty() => {
                let fills: Vec<&str> = r
                    .blanks
                    .iter()
                    .filter_map(|b| b.candidates.first().map(|c| c.text.as_str()))
                    .collect();
                crate::analysis::blanks::fill_in(text, &fills)
            }
            _ => (text.to_owned(), Vec::new()),
        }
    }

    /// Number of chips in the token strip: the tokens (or words) plus the "next" chip.
    pub fn n_chips(&self) -> usize {
        match self.scored() {
            Some(_) if self.word_mode => self.words().len() + 1,
            Some(s) => s.tokens.len() + 1,
            None => 0,
        }
    }

    /// The scored text's words (see `analysis::words`).
    pub fn words(&self) -> Vec<crate::analysis::words::WordReport> {
        match (self.scored(), self.vocab()) {
            (Some(s), Some(v)) => crate::analysis::words::words(v, &s.tokens, &s.rows),
            _ => Vec::new(),
        }
    }

    /// The token the selection stands for: the selected token, the first token of the
    /// selected word, or the number of tokens for the "next" chip.
    pub fn selected_token(&self) -> usize {
        let Some(s) = self.scored() else {
            return 0;
        };
        if !self.word_mode {
            return self.selected;
        }
        self.words()
            .get(self.selected)
            .map_or(s.tokens.len(), |w| w.start)
    }

    /// The position whose distribution the selection shows (p_i for chip i + 1); `None` on
    /// the first token, which nothing predicts.
    pub fn selected_position(&self) -> Option<usize> {
        self.selected_token().checked_sub(1)
    }

    pub fn has_blank(&self) -> bool {
        !find_blanks(self.editor().text()).is_empty()
    }

    pub fn side_panel(&self) -> SidePanel {
        if self.has_blank() {
            SidePanel::Fill
        } else {
            SidePanel::Sentence
        }
    }

    /// What is switched off or pushed in the model the numbers are of (the status bar's
    /// label), if anything.
    pub fn intervention(&self) -> Option<&str> {
        self.model.as_ref()?.info.intervention.as_deref()
    }

    pub fn vocab(&self) -> Option<&Arc<Vocab>> {
        self.model.as_ref().map(|m| &m.vocab)
    }
}
