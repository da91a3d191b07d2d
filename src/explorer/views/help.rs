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
    let mut lines: Vec<Line> = help_rows()
        .map(|r| {
            Line::from(vec![
                Span::from(format!("{:<22}", r.keys)).bold(),
                Span::from(r.what),
            ])
        })
        .collect();
    // A terminal too short for every row: as many as fit, and a line saying how many are not
    // shown (each row on one line, so the count is right).
    let room = usize::from(h.saturating_sub(2));
    let fits = lines.len() <= room;
    if !fits && room >= 2 {
        let hidden = lines.len() - (room - 1);
        lines.truncate(room - 1);
        lines.push(
            Line::from(format!(
                "… {hidden} more: a taller terminal shows them (README, \"Keys\")"
            ))
            .dim(),
        );
    }
    let paragraph = Paragraph::new(lines);
    let paragraph = if fits {
        paragraph.wrap(Wrap { trim: false })
    } else {
        paragraph
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        paragraph.block(
            Block::bordered()
                .title(" keys ")
                .title_bottom(Line::from(" any key closes · q quits ").alignment(Alignment::Right)),
        ),
        rect,
    );
}
