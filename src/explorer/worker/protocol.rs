//! What the explorer and its engine thread say to each other: jobs going in, messages coming
//! out. Every job carries the generation of the text it is for, so stale answers are known.

use std::sync::Arc;
use std::time::Duration;

use crate::analysis::blanks::FillReport;
use crate::analysis::compare::RowCompare;
use crate::analysis::stats::{RowSummary, ViewOptions};
use crate::analysis::vocab::Vocab;
use crate::engine::fill::FillRequest;
use crate::engine::EngineError;
use crate::model::ModelInfo;

/// The kinds of engine work. The order is the priority: when several kinds wait, the first
/// is taken first (an evaluation keeps typing responsive; a fill can wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobKind {
    /// A change of what is switched off in the model: before the evaluations it changes.
    Intervene,
    /// The evaluation of sentence `n` (each sentence has its own slot: evaluating one never
    /// replaces the other's).
    Evaluate(usize),
    Watch,
    Lens,
    Attention,
    Attribution,
    Fill,
    /// Causal tracing of the pair: long, taken when nothing else waits, and stopped for
    /// anything more urgent.
    Trace,
}

/// Which text a job is for: the explorer's keystroke counter (evaluations, watched words and
/// fills count it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct TextGen(pub u64);

/// Names the text (and view, and model) a panel's answers are about: each panel counts its
/// own, and an answer carrying another epoch than the panel's is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Epoch(pub u64);

impl TextGen {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl LensRequest {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl Epoch {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// The lens's own request counter (one request per text, view and panel state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct LensRequest(pub u64);

/// A job's place on its own counter. Tickets of two counters never compare: a keystroke
/// generation cannot make a lens request look old, or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    Text(TextGen),
    Lens(LensRequest),
}

impl Ticket {
    /// Whether work holding `older` is stale once this ticket exists: a newer ticket of the
    /// same counter.
    pub fn supersedes(self, older: Ticket) -> bool {
        match (self, older) {
            (Ticket::Text(a), Ticket::Text(b)) => a > b,
            (Ticket::Lens(a), Ticket::Lens(b)) => a > b,
            _ => false,
        }
    }
}

/// Work that is no longer wanted, each on its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Every job for a text of sentence `n` older than this (its evaluations, and the watched
    /// words and fills, which are the selected sentence's): its line was cleared.
    Texts(usize, TextGen),
    /// Fills for texts older than this: the blank is gone.
    Fill(TextGen),
    /// Lens requests older than this.
    Lens(LensRequest),
    /// Attention requests older than this (the panel's own counter).
    Attention(LensRequest),
    /// Attribution requests older than this (the panel's own counter).
    Attribution(LensRequest),
    /// Traces older than this (the trace view's own counter).
    Trace(LensRequest),
}

impl Cancel {
    /// The kinds it applies to, each with the ticket below which its work is stale.
    pub fn targets(self) -> Vec<(JobKind, Ticket)> {
        match self {
            Cancel::Texts(n, g) => [JobKind::Evaluate(n), JobKind::Watch, JobKind::Fill]
                .into_iter()
                .map(|k| (k, Ticket::Text(g)))
                .collect(),
            Cancel::Fill(g) => vec![(JobKind::Fill, Ticket::Text(g))],
            Cancel::Lens(r) => vec![(JobKind::Lens, Ticket::Lens(r))],
            Cancel::Attention(r) => vec![(JobKind::Attention, Ticket::Lens(r))],
            Cancel::Attribution(r) => vec![(JobKind::Attribution, Ticket::Lens(r))],
            Cancel::Trace(r) => vec![(JobKind::Trace, Ticket::Lens(r))],
        }
    }
}

/// A piece of engine work.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Switch the parts of `ablate` off (an `--ablate` spec; empty: none) for every later job
    /// (the explorer counts these requests).
    Intervene {
        request: LensRequest,
        ablate: String,
    },
    /// Score the text of sentence `sentence`: every position's distribution.
    Evaluate {
        sentence: usize,
        generation: TextGen,
        text: String,
        view: ViewOptions,
        /// Words watched at every position.
        watch: Vec<String>,
        /// A lens, H·W, attention or attribution panel is open on this sentence: the
        /// evaluation reads for it in the same decode.
        readers: bool,
    },
    /// Fill the blanks of the text.
    Fill {
        generation: TextGen,
        request: FillRequest,
    },
    /// The watched words at one position of the text shown (`generation`: the evaluation's)
    /// of sentence `sentence`.
    Watch {
        sentence: usize,
        generation: TextGen,
        text: String,
        position: usize,
        words: Vec<String>,
        view: ViewOptions,
    },
    /// The logit lens of the text shown: the status, the column of `first` (and its H·W
    /// panel when `hw`), then every other column not in `skip`, nearest first.
    /// `request` counts lens requests; `epoch` names the text and view they are for.
    Lens {
        request: LensRequest,
        epoch: Epoch,
        text: String,
        view: ViewOptions,
        first: usize,
        hw: bool,
        skip: Vec<usize>,
    },
    /// The attention at `position` of the text shown (the panel counts its requests; `epoch`
    /// names the text).
    Attention {
        request: LensRequest,
        epoch: Epoch,
        text: String,
        position: usize,
    },
    /// The logit of `target` (the actual next token when `None`) at `position` of the text
    /// shown, split into its parts (the attribution panel counts its requests).
    Attribution {
        request: LensRequest,
        epoch: Epoch,
        text: String,
        position: usize,
        target: Option<u32>,
    },
    /// Causal tracing of `clean` (sentence A) against `corrupt` (B); `epoch` names the pair.
    Trace {
        request: LensRequest,
        epoch: Epoch,
        clean: String,
        corrupt: String,
        /// The view's temperature.
        temp: f32,
    },
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Evaluate { sentence, .. } => JobKind::Evaluate(*sentence),
            Job::Fill { .. } => JobKind::Fill,
            Job::Watch { .. } => JobKind::Watch,
            Job::Lens { .. } => JobKind::Lens,
            Job::Attention { .. } => JobKind::Attention,
            Job::Attribution { .. } => JobKind::Attribution,
            Job::Trace { .. } => JobKind::Trace,
            Job::Intervene { .. } => JobKind::Intervene,
        }
    }

    /// The job's place on its counter.
    pub fn ticket(&self) -> Ticket {
        match self {
            Job::Evaluate { generation, .. }
            | Job::Fill { generation, .. }
            | Job::Watch { generation, .. } => Ticket::Text(*generation),
            Job::Lens { request, .. }
            | Job::Attention { request, .. }
            | Job::Attribution { request, .. }
            | Job::Trace { request, .. }
            | Job::Intervene { request, .. } => Ticket::Lens(*request),
        }
    }
}

/// A scored text as the explorer keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub text: String,
    pub tokens: Vec<u32>,
    /// `rows[i]` = p_i, the distribution after token i.
    pub rows: Vec<RowSummary>,
    pub n_tokens_total: usize,
    pub view: ViewOptions,
    pub elapsed: Duration,
    pub decoded: usize,
    /// With a second model: its rows and every position compared.
    pub compare: Option<ScoredCompare>,
}

/// The second model's side of a scored text.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredCompare {
    /// `b_rows[i]` = model B's p_i.
    pub b_rows: Vec<RowSummary>,
    /// `rows[i]` compares A's and B's p_i.
    pub rows: Vec<RowCompare>,
}

/// What the engine thread reports.
#[derive(Debug, Clone)]
pub enum EngineMsg {
    LoadProgress(f32),
    Loaded {
        info: ModelInfo,
        vocab: Arc<Vocab>,
        n_ctx: usize,
        /// The second model, when comparing.
        second: Option<ModelInfo>,
    },
    LoadFailed(EngineError),
    Evaluated {
        sentence: usize,
        generation: TextGen,
        result: Result<Scored, EngineError>,
    },
    /// A fill is under way: candidates settled (`done` of `total`) for `blank`, vocabulary
    /// words searched, and now and then the ranking so far.
    FillProgress {
        generation: TextGen,
        blank: usize,
        done: usize,
        total: usize,
        searched: usize,
        partial: Option<Box<FillReport>>,
    },
    Filled {
        generation: TextGen,
        result: Result<Box<FillReport>, EngineError>,
    },
    /// The watched words at a position of the text of evaluation `generation`.
    WatchedAt {
        sentence: usize,
        generation: TextGen,
        position: usize,
        values: Vec<crate::analysis::watch::WatchValue>,
    },
    /// Part of the lens of the text and view of `epoch`.
    Lens {
        epoch: Epoch,
        update: LensUpdate,
    },
    /// The attention at `position` of the text of `epoch`, or why there is none.
    Attention {
        epoch: Epoch,
        position: usize,
        result: Result<crate::analysis::attention::AttentionView, EngineError>,
    },
    /// The model now has `ablate` switched off: the intervention's label (`None`: intact)
    /// and the model compared with (the intact one while something is switched off); or
    /// why not, the model left as it was.
    Intervened {
        ablate: String,
        result: Result<(Option<String>, Option<ModelInfo>), EngineError>,
    },
    /// The split logit at `position` of the text of `epoch` (`target` as asked), or why
    /// there is none.
    Attribution {
        epoch: Epoch,
        position: usize,
        target: Option<u32>,
        result: Result<crate::analysis::attribution::Attribution, EngineError>,
    },
    /// Causal tracing of the pair of `epoch`.
    Trace {
        epoch: Epoch,
        update: TraceUpdate,
    },
    /// An RPC server holding the model's layers was lost: nothing more will come from the
    /// engine (its thread waits on the network for good); what is shown stays.
    Lost(String),
    /// The engine thread panicked: nothing more will come from it.
    Crashed(String),
}

pub use crate::engine::workbench::LensUpdate;

/// What the engine says about a trace: cells so far, the whole grid, that it stopped for
/// more urgent work (to be asked again), or why there is none.
#[derive(Debug, Clone)]
pub enum TraceUpdate {
    Progress {
        report: Box<crate::analysis::trace::TraceReport>,
        done: usize,
        total: usize,
    },
    Done(Box<crate::analysis::trace::TraceReport>),
    Stopped,
    Failed(EngineError),
}
