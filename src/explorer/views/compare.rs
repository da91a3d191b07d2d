//! The distribution panel when two models are compared (`--vs`): A's top tokens with their
//! probability under both models and the difference, B's own top tokens, and how far the two
//! distributions are apart (KL both ways, Jensen–Shannon).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::truncate_to_width;
use crate::analysis::compare::{top1_changed, RowCompare};
use crate::analysis::stats::RowSummary;
use crate::analysis::vocab::{pad_to_width, Vocab};
use crate::explorer::layout::chip_label;

/// Draw position `a`'s and `b`'s distributions side by side into `inner`.
pub fn draw(
    frame: &mut Frame,
    inner: Rect,
    vocab: &Vocab,
    a: &RowSummary,
    b: &RowSummary,
    cmp: &RowCompare,
) {
    let label_w = 12usize;
    let mut lines = vec![
        Line::from(format!(
            "KL(A‖B) {:.3}  KL(B‖A) {:.3}  JS {:.3} bits",
            cmp.kl_bits, cmp.kl_reverse_bits, cmp.js_bits
        )),
        Line::from(if top1_changed(a, b) {
            Span::from("the most likely token differs").bold()
        } else {
            Span::from("same most likely token").dim()
        }),
        Line::from(format!(
            "{:>3} {} {:>7} {:>7} {:>8}",
            "#",
            pad_to_width("A's top", label_w),
            "p A",
            "p B",
            "Δp B−A"
        ))
        .bold(),
    ];
    let rows_fit = (inner.height as usize).saturating_sub(lines.len() + 2);
    for (r, e) in a.top.iter().enumerate().take(rows_fit) {
        let pa = e.logprob.exp();
        let pb = cmp.a_top_in_b.get(r).map(|l| l.exp());
        let is_actual = a.target.is_some_and(|t| t.id == e.id);
        let label = truncate_to_width(&chip_label(vocab.bytes(e.id)), label_w);
        let text = format!(
            "{:>3} {} {:>7.4} {:>7} {:>8}{}",
            r + 1,
            pad_to_width(&label, label_w),
            pa,
            pb.map_or_else(|| "-".into(), |p| format!("{p:.4}")),
            pb.map_or_else(|| "-".into(), |p| format!("{:+.4}", p - pa)),
            if is_actual { " ◂" } else { "" }
        );
        lines.push(if is_actual {
            Line::styled(
                text,
                Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            )
        } else {
            Line::from(text)
        });
    }
    let b_top: Vec<String> = b
        .top
        .iter()
        .take(5)
        .map(|e| {
            format!(
                "{} {:.3}",
                truncate_to_width(&chip_label(vocab.bytes(e.id)), label_w),
                e.logprob.exp()
            )
        })
        .collect();
    lines.push(Line::from(format!("B's top: {}", b_top.join("  "))).dim());
    match (a.target, b.target) {
        (Some(ta), Some(tb)) => lines.push(Line::from(format!(
            "actual {}: A p {:.4} (rank {})  B p {:.4} (rank {})",
            truncate_to_width(&chip_label(vocab.bytes(ta.id)), label_w),
            ta.prob,
            ta.rank,
            tb.prob,
            tb.rank
        ))),
        _ => lines.push(Line::from("(prediction for the token after the text)").dim()),
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
