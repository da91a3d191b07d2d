//! The help overlay, drawn from the key map (`explorer::keymap`), the same table `update`
//! applies.

use ratatui::layout::{Alignment, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::explorer::keymap::help_rows;

pub fn draw(frame: &mut Frame, area: Rect) {
    let w = area.width.saturating_sub(2).min(66);
    let h = (help_rows().count() as u16 + 4).min(area.height.saturating_sub(2));
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let lines: Vec<Line> = help_rows()
        .map(|r| {
            Line::from(vec![
                Span::from(format!("{:<22}", r.keys)).bold(),
                Span::from(r.what),
            ])
        })
        .collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                Block::bordered().title(" keys ").title_bottom(
                    Line::from(" any key closes · q quits ").alignment(Alignment::Right),
                ),
            )
            .wrap(Wrap { trim: false }),
        rect,
    );
}
