//! Drawing: a pure function of [`App`], one file per panel. Where each panel goes is
//! `explorer::layout`, shared with `update` so a mouse click maps to exactly the chip drawn
//! under it.

mod attention;
mod attribution;
mod chart;
mod compare;
mod distribution;
mod fill;
mod help;
mod hw;
mod input;
mod lens;
mod loading;
mod pair;
mod report;
mod status;
mod strip;
pub mod style;
mod trace;

use ratatui::style::Stylize;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use crate::analysis::vocab::sanitize_for_terminal;
use crate::explorer::layout::{app_areas, MIN_HEIGHT, MIN_WIDTH};
use crate::explorer::state::{App, Inspect, Phase, SidePanel};

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}×{} (need {}×{})",
            area.width, area.height, MIN_WIDTH, MIN_HEIGHT
        );
        frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    match &app.phase {
        Phase::Loading { progress } => {
            loading::draw(frame, app, *progress);
            return;
        }
        Phase::Failed(msg) => {
            let p = Paragraph::new(vec![
                Line::from("The model could not be loaded:".bold()),
                Line::from(sanitize_for_terminal(msg)),
                Line::from(""),
                Line::from("Press Esc to quit."),
            ])
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" logitscope "));
            frame.render_widget(p, area);
            return;
        }
        Phase::Ready => {}
    }
    let a = app_areas(app);
    let pair = app.pair().is_some();
    if pair {
        pair::draw_input(frame, app, a.input);
        pair::draw_strip(frame, app, a.strip);
    } else {
        input::draw(frame, app, a.input);
        strip::draw(frame, app, a.strip);
    }
    if app.inspect == Inspect::Trace {
        // The grid takes the whole body.
        trace::draw(frame, app, a.dist.union(a.side));
        status::draw(frame, app, a.status);
        if app.help {
            help::draw(frame, area);
        }
        return;
    }
    match app.inspect {
        Inspect::Trace => {}
        Inspect::Lens => lens::draw_layers(frame, app, a.dist),
        Inspect::Hw => hw::draw(frame, app, a.dist),
        Inspect::Attention => attention::draw_grid(frame, app, a.dist),
        Inspect::Attribution => attribution::draw_parts(frame, app, a.dist),
        Inspect::Off | Inspect::Report if pair => pair::draw_distribution(frame, app, a.dist),
        Inspect::Off | Inspect::Report => distribution::draw(frame, app, a.dist),
    }
    match (app.inspect, app.side_panel()) {
        (Inspect::Lens, _) => lens::draw_grid(frame, app, a.side),
        (Inspect::Attention, _) => attention::draw_rows(frame, app, a.side),
        (Inspect::Attribution, _) => attribution::draw_heads(frame, app, a.side),
        (Inspect::Trace, _) => {}
        (Inspect::Report, _) => report::draw(frame, app, a.side),
        (_, SidePanel::Fill) => fill::draw(frame, app, a.side),
        (_, SidePanel::Sentence) => chart::draw(frame, app, a.side),
    }
    status::draw(frame, app, a.status);
    if app.help {
        help::draw(frame, area);
    }
}
