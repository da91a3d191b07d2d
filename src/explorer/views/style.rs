//! Styles and text helpers every panel shares: GLTR buckets, the heat scale, colour that
//! honours `NO_COLOR`, cutting text to a width.

use ratatui::style::{Color, Style};
use unicode_width::UnicodeWidthStr;

use crate::explorer::state::{App, ColorMode};
/// GLTR's buckets of the rank the model gave a token.
pub fn bucket(rank: u32) -> usize {
    match rank {
        1 => 0,
        2..=10 => 1,
        11..=100 => 2,
        _ => 3,
    }
}

/// A cue that reads without colour: taller bar = likelier token.
pub const BUCKET_GLYPHS: [&str; 4] = ["█", "▆", "▃", "▁"];
pub const BUCKET_COLORS: [Color; 4] = [Color::Green, Color::Yellow, Color::Red, Color::Magenta];

/// A continuous colour for p: red (p ≤ 1e-6) through yellow to green (p = 1), on log p.
pub fn heat(p: f64) -> Color {
    let x = ((p.max(1e-6).log10() + 6.0) / 6.0).clamp(0.0, 1.0);
    let (r, g) = if x < 0.5 {
        (230.0, 60.0 + 340.0 * x)
    } else {
        (230.0 - 380.0 * (x - 0.5), 230.0)
    };
    Color::Rgb(r as u8, g as u8, 70)
}

pub fn bucket_style(app: &App, rank: Option<u32>, prob: Option<f64>) -> Style {
    if app.no_color {
        return Style::default();
    }
    match (app.color, rank, prob) {
        (ColorMode::Buckets, Some(r), _) => Style::default().fg(BUCKET_COLORS[bucket(r)]),
        (ColorMode::Heat | ColorMode::Divergence, _, Some(p)) => Style::default().fg(heat(p)),
        _ => Style::default().fg(Color::Gray),
    }
}

pub fn style_fg(app: &App, c: Color) -> Style {
    if app.no_color {
        Style::default()
    } else {
        Style::default().fg(c)
    }
}

pub fn truncate_to_width(s: &str, w: usize) -> String {
    let mut out = String::new();
    for g in unicode_segmentation::UnicodeSegmentation::graphemes(s, true) {
        if out.width() + g.width() > w {
            break;
        }
        out.push_str(g);
    }
    out
}

/// How far two models disagree at a position, in four steps of KL(A‖B): below 0.01 bit,
/// below 0.1, below 1, and more (0..=3).
pub fn divergence_bucket(kl_bits: f64) -> usize {
    match kl_bits {
        k if k >= 1.0 => 3,
        k if k >= 0.1 => 2,
        k if k >= 0.01 => 1,
        _ => 0,
    }
}

pub fn divergence_style(app: &App, bucket: usize) -> Style {
    const COLORS: [Color; 4] = [Color::Green, Color::Yellow, Color::Red, Color::Magenta];
    style_fg(app, COLORS[bucket.min(3)])
}

/// The heat colour of a probability, honouring `NO_COLOR`.
pub fn heat_style(app: &App, p: f64) -> Style {
    if app.no_color {
        Style::default()
    } else {
        Style::default().fg(heat(p))
    }
}

/// A bar of `fraction` (0..=1) of `width` cells, in eighths of a cell (unpadded).
pub fn eighths_bar(fraction: f64, width: usize) -> String {
    const EIGHTHS: [&str; 8] = ["▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"];
    let eighths = (fraction.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push_str(EIGHTHS[eighths % 8 - 1]);
    }
    s
}

/// A panel's message instead of its content: bold when it is an error, else dim.
pub fn panel_message(
    frame: &mut ratatui::Frame,
    inner: ratatui::layout::Rect,
    text: String,
    loud: bool,
) {
    use ratatui::style::Stylize;
    use ratatui::widgets::{Paragraph, Wrap};
    let p = Paragraph::new(text).wrap(Wrap { trim: true });
    frame.render_widget(if loud { p.bold() } else { p.dim() }, inner);
}
