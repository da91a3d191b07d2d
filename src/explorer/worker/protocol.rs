//! What the explorer and its engine thread say to each other: jobs going in, messages coming
//! out. Every job carries the generation of the text it is for, so stale answers are known.

use std::sync::Arc;
use std::time::Duration;

use crate::analysis::blanks::FillReport;
use crate::analysis::compare::RowCompare;
use crate::analysis::stats::{RowSummary, ViewOptions};
use crate::analysis::vocab::Vocab;
use crate::engine::fill::FillRequest;
use crate::model::ModelInfo;

/// The kinds of engine work. The order is the priority: when several kinds wait, the first
/// is taken first (an evaluation keeps typing responsive; a fill can wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobKind {
    Evaluate,
    Watch,
    Fill,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Evaluate, JobKind::Watch, JobKind::Fill];
}

/// A piece of engine work.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Score the text: every position's distribution.
    Evaluate {
        generation: u64,
        text: String,
        view: ViewOptions,
        /// Words watched at every position.
        watch: Vec<String>,
    },
    /// Fill the blanks of the text.
    Fill {
        generation: u64,
        request: FillRequest,
    },
    /// The watched words at one position of the text shown (`generation`: the evaluation's).
    Watch {
        generation: u64,
        text: String,
        position: usize,
        words: Vec<String>,
        view: ViewOptions,
    },
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Evaluate { .. } => JobKind::Evaluate,
            Job::Fill { .. } => JobKind::Fill,
            Job::Watch { .. } => JobKind::Watch,
        }
    }

    pub fn generation(&self) -> u64 {
        match self {
            Job::Evaluate { generation, .. }
            | Job::Fill { generation, .. }
            | Job::Watch { generation, .. } => *generation,
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
    LoadFailed(String),
    Evaluated {
        generation: u64,
        result: Result<Scored, String>,
    },
    /// A fill is under way: candidates settled (`done` of `total`) for `blank`, vocabulary
    /// words searched, and now and then the ranking so far.
    FillProgress {
        generation: u64,
        blank: usize,
        done: usize,
        total: usize,
        searched: usize,
        partial: Option<Box<FillReport>>,
    },
    Filled {
        generation: u64,
        result: Result<Box<FillReport>, String>,
    },
    /// The watched words at a position of the text of evaluation `generation`.
    WatchedAt {
        generation: u64,
        position: usize,
        values: Vec<crate::analysis::watch::WatchValue>,
    },
    /// The engine thread panicked: nothing more will come from it.
    Crashed(String),
}
