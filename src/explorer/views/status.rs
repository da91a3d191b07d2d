//! The status bar: settings, timing, model.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use unicode_width::UnicodeWidthStr;

use crate::analysis::vocab::sanitize_for_terminal;
use crate::explorer::state::{App, Focus};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let style = if app.no_color {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default().bg(Color::DarkGray).fg(Color::White)
    };
    // The watch-list line takes the status bar while it is edited.
    if matches!(app.focus, Focus::Watch | Focus::Ablate) {
        let prompt = if app.focus == Focus::Watch {
            "watch (comma-separated; Enter applies, Esc cancels): "
        } else {
            "switch off (attn:3, ffn:5-7, head:2.1; empty: none; Enter, Esc): "
        };
        let w = area.width.saturating_sub(prompt.width() as u16) as usize;
        let vp = app.watch_input.viewport(w, 0);
        let line = format!(
            "{prompt}{}",
            sanitize_for_terminal(&app.watch_input.text()[vp.start..vp.end])
        );
        frame.render_widget(Paragraph::new(line).style(style), area);
        if !app.help {
            frame.set_cursor_position((
                area.x + prompt.width() as u16 + vp.cursor_col as u16,
                area.y,
            ));
        }
        return;
    }
    let mut parts = vec!["F1 help".to_owned()];
    // What is switched off or pushed comes first: every number shown is of that model.
    if let Some(label) = app.intervention() {
        parts.push(format!("⚠ {label} · Δ vs intact"));
    }
    if let Some(p) = &app.ablation.pending {
        parts.push(format!(
            "switching to {}…",
            if p.is_empty() { "the intact model" } else { p }
        ));
    }
    parts.push(format!(
        "T {}",
        crate::analysis::report::tidy_temp(app.view.temp)
    ));
    parts.push(format!("k {}", app.view.n_probs));
    if !app.watch.is_empty() {
        parts.push(format!("watch {}", app.watch.join(",")));
    }
    if let Some(s) = app.scored() {
        parts.push(format!("{} tokens", s.tokens.len()));
        parts.push(format!(
            "{:.0} ms ({} decoded)",
            s.elapsed.as_secs_f64() * 1000.0,
            s.decoded
        ));
    }
    if let Some(m) = &app.model {
        match &m.second {
            Some(b) => parts.push(format!("A {} vs B {}", m.info.file_name, b.file_name)),
            None => parts.push(m.info.file_name.clone()),
        }
        parts.push(format!("|V| {}", m.vocab.len()));
        parts.push(format!("n_ctx {}", m.n_ctx));
        let offloaded: Vec<String> = m
            .info
            .devices
            .iter()
            .filter(|d| d.name != "CPU")
            .map(|d| format!("{} ({}) {} layers", d.name, d.description, d.layers))
            .collect();
        if m.info.batching.is_some() {
            parts.push("⚠ one sequence at a time (self-check)".into());
        }
        parts.push(if !offloaded.is_empty() {
            offloaded.join(", ")
        } else if m.info.gpu_layers > 0 {
            format!("GPU layers {}", m.info.gpu_layers)
        } else {
            "CPU".into()
        });
    }
    let mut line = parts.join(" │ ");
    if let Some(n) = &app.notice {
        line = format!("{} │ {line}", sanitize_for_terminal(n));
    }
    if let Some(w) = &app.warning {
        line = format!("⚠ {} │ {line}", sanitize_for_terminal(w));
    }
    if let Some(lost) = &app.lost {
        line = format!(
            "⚠ model lost, what is shown stays, Esc quits: {} │ {line}",
            sanitize_for_terminal(lost)
        );
    }
    frame.render_widget(Paragraph::new(line).style(style), area);
}
