//! `logitscope fill`: left-context predictions at each blank and candidates re-scored with the
//! whole sentence, one JSON object per text.

use std::process::ExitCode;

use super::fatal::Fatal;
use super::lines::{for_each_text, json_line, ErrorStyle};
use super::settings::Settings;
use crate::engine::fill::{FillRequest, Filler};

pub fn run(
    settings: &Settings,
    texts: Vec<String>,
    candidates: Vec<String>,
    n_candidates: usize,
) -> Result<ExitCode, Fatal> {
    let model = settings.load_model()?;
    let mut main = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let mut filler = Filler::new(&model);
    for_each_text(texts, ErrorStyle::Json, |text| {
        let request = FillRequest {
            text: text.to_owned(),
            user_candidates: candidates.clone(),
            n_candidates,
            view: settings.view,
        };
        filler
            .fill(&mut main, &request, &|| false, &mut |_, _, _| {})
            .map(|report| json_line(&report))
            .map_err(|e| e.to_string())
    })
}
