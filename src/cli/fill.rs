//! `logitscope fill`: left-context predictions at each blank and candidates re-scored with the
//! whole sentence, one JSON object per text.

use std::process::ExitCode;

use super::fatal::Fatal;
use super::lines::{for_each_text, json_line, ErrorStyle};
use super::settings::Settings;
use crate::engine::fill::{FillRequest, Filler};

/// The subcommand's own flags.
pub struct Options {
    pub candidates: Vec<String>,
    pub n_candidates: usize,
    pub ask: bool,
    pub word_list: Option<std::path::PathBuf>,
}

pub fn run(settings: &Settings, texts: Vec<String>, opts: Options) -> Result<ExitCode, Fatal> {
    let word_list = match &opts.word_list {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Fatal::other(format!(
                    "cannot read the word list '{}': {e}",
                    path.display()
                ))
            })?;
            Some(std::sync::Arc::new(
                text.lines().map(str::to_owned).collect::<Vec<_>>(),
            ))
        }
        None => None,
    };
    let model = settings.load_model()?;
    let second = settings.load_second(&model)?;
    let mut b_session = match &second {
        Some(b) => Some(b.session().map_err(|e| Fatal::other(e.to_string()))?),
        None => None,
    };
    let mut main = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let mut filler = Filler::new(&model);
    for_each_text(texts, ErrorStyle::Json, |text| {
        let request = FillRequest {
            text: text.to_owned(),
            user_candidates: opts.candidates.clone(),
            n_candidates: opts.n_candidates,
            view: settings.view,
            search: settings
                .search
                .unwrap_or_else(crate::engine::search::default_budget),
            ask: opts.ask,
            word_list: word_list.clone(),
            prune: true,
            shared_prefix: true,
        };
        let mut report = filler
            .fill(&mut main, &request, &|| false, &mut |_| {})
            .map_err(|e| e.to_string())?;
        if let Some(b) = &mut b_session {
            crate::engine::compare::fill_compare(b, &mut report, settings.view)
                .map_err(|e| e.to_string())?;
        }
        Ok(json_line(&report))
    })
}
