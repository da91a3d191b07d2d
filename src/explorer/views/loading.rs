//! The screen while the model loads: a progress gauge.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Gauge, Paragraph};
use ratatui::Frame;

use crate::explorer::state::App;

pub fn draw(frame: &mut Frame, app: &App, progress: f32) {
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(5),
        Constraint::Fill(1),
    ])
    .areas(frame.area());
    let [_, mid, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Percentage(70),
        Constraint::Fill(1),
    ])
    .areas(mid);
    let gauge = Gauge::default()
        .block(Block::bordered().title(format!(
            " loading {} ",
            crate::analysis::vocab::sanitize_for_terminal(&app.model_name)
        )))
        .ratio(f64::from(progress.clamp(0.0, 1.0)))
        .label(format!("{:.0}%", progress * 100.0));
    let gauge = if app.no_color {
        gauge
    } else {
        gauge.gauge_style(Style::default().fg(Color::Cyan))
    };
    frame.render_widget(gauge, mid);
    if !app.editor().text().is_empty() {
        let [_, below] = Layout::vertical([Constraint::Length(5), Constraint::Length(1)])
            .areas(Rect::new(mid.x, mid.y, mid.width, mid.height + 1));
        frame.render_widget(
            Paragraph::new("your text will be scored as soon as the model is ready").dim(),
            below,
        );
    }
}
