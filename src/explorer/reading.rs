//! What the reading aids ask of `update`: the watched words at the selected position, and an
//! export of what is shown (the score report with words, comparison and lens; the fill).

use crate::explorer::message::Command;
use crate::explorer::state::App;
use crate::explorer::worker::protocol::Job;

/// Ask for the watched words' probability at the selected position (words of several tokens
/// need extra decodes; one-token words come with every evaluation).
pub fn watch_at_selection(app: &App) -> Vec<Command> {
    match app.scored() {
        Some(s) if !app.watch.is_empty() && !app.stale() => {
            let position = app.selected_token().saturating_sub(1);
            vec![Command::Run(Job::Watch {
                sentence: app.active,
                generation: app.sentence().shown_generation,
                text: s.text.clone(),
                position,
                words: app.watch.clone(),
                view: s.view,
            })]
        }
        _ => Vec::new(),
    }
}

/// Ask for what is shown to be written to a file: the `score` report of the text on screen
/// (words, watched words and the comparison included), and the fill-in report.
pub fn export(app: &mut App) -> Vec<Command> {
    let (Some(scored), Some(m)) = (app.scored(), &app.model) else {
        app.notice = Some("nothing to export yet".into());
        return Vec::new();
    };
    let mut report = crate::analysis::report::score_report(
        &scored.text,
        &m.info.facts(),
        &m.vocab,
        scored.view.temp,
        &scored.tokens,
        &scored.rows,
        scored.n_tokens_total,
    );
    report.words = Some(app.words());
    if let (Some(c), Some(b)) = (&scored.compare, &m.second) {
        crate::analysis::report::attach_compare(
            &mut report,
            &b.file_name,
            &scored.rows,
            &c.b_rows,
            &c.rows,
        );
    }
    // The lens of this text, as far as it has arrived.
    let lens = &app.lens;
    if let Some(status) = lens
        .status()
        .cloned()
        .filter(|_| lens.text() == scored.text)
    {
        let columns: Vec<_> = (0..scored.tokens.len())
            .map(|i| lens.columns().get(&i).cloned())
            .collect();
        crate::analysis::report::attach_lens(&mut report, &m.vocab, status, &columns);
    }
    let export = crate::analysis::report::Export {
        score: report,
        watch: app.watch.clone(),
        fill: app
            .fill()
            .report
            .as_deref()
            .filter(|r| r.text == app.editor().text())
            .cloned(),
    };
    vec![Command::Export(Box::new(export))]
}
