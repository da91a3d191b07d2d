//! The sentence line at the top.

use ratatui::layout::Rect;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use crate::explorer::state::{App, Focus};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let focused = app.focus == Focus::Text;
    let block = Block::bordered().title(Line::from(vec![
        " type a sentence ".into(),
        Span::from("(____ or [MASK] makes a blank) ").dim(),
    ]));
    let inner = block.inner(area);
    let width = inner.width.saturating_sub(2) as usize;
    let vp = app.editor().viewport(width, app.sentence().input_scroll);
    let shown = &app.editor().text()[vp.start..vp.end];
    let line = Line::from(vec![
        Span::from("› ").dim(),
        Span::from(crate::analysis::vocab::sanitize_for_terminal(shown)),
    ]);
    frame.render_widget(Paragraph::new(line).block(block), area);
    if focused && !app.help {
        frame.set_cursor_position((inner.x + 2 + vp.cursor_col as u16, inner.y));
    }
}
