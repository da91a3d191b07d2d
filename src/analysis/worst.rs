//! The positions of a corpus to look at: what `perplexity --worst N` lists (in text and in
//! JSON) and what the explorer's corpus report (`--report FILE`) reads back. One type both
//! ways, so the file the command writes is the file the explorer opens.

use serde::{Deserialize, Serialize};

/// One scored position of a corpus: where it is, the text around it and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// The chunk, from 1.
    pub chunk: usize,
    /// The position in the chunk whose row predicts the token (the token is at `pos + 1`).
    pub pos: usize,
    /// The token's index in the corpus's tokens.
    pub index: usize,
    pub token_id: u32,
    /// The token's text.
    pub token: String,
    /// The text of up to 24 tokens before the token (its row's position included).
    pub before: String,
    /// The text of up to 8 tokens after it.
    pub after: String,
    /// −ln p of the token under the model measured.
    pub nll: f64,
    /// p of the token under the model measured.
    pub p: f64,
    /// With a base: KL(base ‖ model) at the position, nats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kld: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nll_base: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_base: Option<f64>,
    /// The two models' most likely tokens at the position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_base: Option<String>,
}

/// Why a list was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Largest KL(base ‖ model).
    Kld,
    /// Largest drop of the actual token's probability from the base to the model.
    PDrop,
    /// One model: the least likely tokens.
    LeastLikely,
}

impl Ranking {
    /// The JSON key `perplexity --format json` writes the list under.
    pub fn key(self) -> &'static str {
        match self {
            Ranking::Kld => "worst_kld",
            Ranking::PDrop => "worst_p_drop",
            Ranking::LeastLikely => "worst",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Ranking::Kld => "largest KL divergence",
            Ranking::PDrop => "largest drop in p",
            Ranking::LeastLikely => "least likely tokens",
        }
    }

    const ALL: [Ranking; 3] = [Ranking::Kld, Ranking::PDrop, Ranking::LeastLikely];
}

/// A corpus report as `perplexity --worst N --format json` writes it: the model measured,
/// the base it was measured against (if any), the chunk length, and the lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The model measured (its file name).
    pub model: String,
    /// The base: a model's file name (`--vs`) or a base file's path (`--kl-divergence`).
    pub base: Option<String>,
    pub n_ctx: usize,
    /// Each entry with the list it comes from, lists in [`Ranking`]'s order.
    pub entries: Vec<(Ranking, Place)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not the JSON `logitscope perplexity --format json` writes: {why}")]
    Format { path: String, why: String },
    #[error("{path} lists no positions: write it with `logitscope perplexity -f TEXT --worst N --format json`")]
    Empty { path: String },
}

impl Report {
    /// Read a report from the JSON object `perplexity --format json` printed.
    pub fn parse(json: &str, path: &str) -> Result<Self, ReportError> {
        let format = |why: String| ReportError::Format {
            path: path.to_owned(),
            why,
        };
        let value: serde_json::Value =
            serde_json::from_str(json.trim()).map_err(|e| format(e.to_string()))?;
        let model = value["model"]
            .as_str()
            .ok_or_else(|| format("no \"model\"".into()))?
            .to_owned();
        let n_ctx = value["n_ctx"]
            .as_u64()
            .ok_or_else(|| format("no \"n_ctx\"".into()))? as usize;
        let base = value["base"].as_str().map(str::to_owned);
        let mut entries = Vec::new();
        for ranking in Ranking::ALL {
            let Some(list) = value.get(ranking.key()) else {
                continue;
            };
            let places: Vec<Place> = serde_json::from_value(list.clone())
                .map_err(|e| format(format!("\"{}\": {e}", ranking.key())))?;
            entries.extend(places.into_iter().map(|p| (ranking, p)));
        }
        if entries.is_empty() {
            return Err(ReportError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self {
            model,
            base,
            n_ctx,
            entries,
        })
    }

    pub fn load(path: &std::path::Path) -> Result<Self, ReportError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }
}

/// Control characters and line separators as one space each, as the explorer's one-line
/// editor would hold them (done here, so that byte offsets into the excerpt are final).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

impl Place {
    /// The excerpt the explorer opens: the text before, the token, the text after, on one
    /// line; and the byte range of the token in it.
    pub fn excerpt(&self) -> (String, std::ops::Range<usize>) {
        let (before, token, after) = (
            one_line(&self.before),
            one_line(&self.token),
            one_line(&self.after),
        );
        let start = before.len();
        let end = start + token.len();
        (format!("{before}{token}{after}"), start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(kld: Option<f64>) -> Place {
        Place {
            chunk: 2,
            pos: 300,
            index: 812,
            token_id: 42,
            token: " cat".into(),
            before: "The\tquick\u{2028}brown".into(),
            after: " sat.".into(),
            nll: 2.0,
            p: (-2.0f64).exp(),
            kld,
            nll_base: kld.map(|_| 0.5),
            p_base: kld.map(|_| (-0.5f64).exp()),
            top: kld.map(|_| " dog".into()),
            top_base: kld.map(|_| " cat".into()),
        }
    }

    #[test]
    fn a_report_reads_back_what_perplexity_writes() {
        let compared = serde_json::json!({
            "model": "q.gguf", "base": "base.gguf", "n_ctx": 512,
            "worst_kld": [place(Some(1.5))], "worst_p_drop": [place(Some(0.25))],
        });
        let r = Report::parse(&compared.to_string(), "r.json").expect("a report");
        assert_eq!(r.model, "q.gguf");
        assert_eq!(r.base.as_deref(), Some("base.gguf"));
        assert_eq!(r.n_ctx, 512);
        assert_eq!(
            r.entries,
            vec![
                (Ranking::Kld, place(Some(1.5))),
                (Ranking::PDrop, place(Some(0.25)))
            ]
        );
        let alone = serde_json::json!({"model": "m.gguf", "n_ctx": 64, "worst": [place(None)]});
        let text = serde_json::to_string(&alone).expect("json");
        assert!(!text.contains("kld"), "one model writes no base fields");
        let r = Report::parse(&text, "r.json").expect("a report");
        assert_eq!(r.base, None);
        assert_eq!(r.entries, vec![(Ranking::LeastLikely, place(None))]);
    }

    #[test]
    fn bad_reports_are_named() {
        let err = |s: &str| {
            Report::parse(s, "r.json")
                .expect_err("not a report")
                .to_string()
        };
        assert!(err("[1,").contains("r.json is not the JSON"));
        assert!(err("{\"n_ctx\": 4}").contains("no \"model\""));
        let none = r#"{"model":"m","n_ctx":64,"ppl":3.0}"#;
        assert!(err(none).contains("lists no positions"), "{}", err(none));
        let empty = r#"{"model":"m","n_ctx":64,"worst":[]}"#;
        assert!(err(empty).contains("--worst N"));
        let bad = r#"{"model":"m","n_ctx":64,"worst":[{"chunk":1}]}"#;
        assert!(err(bad).contains("\"worst\""), "{}", err(bad));
    }

    #[test]
    fn the_excerpt_is_one_line_with_the_token_where_it_was() {
        let (text, at) = place(None).excerpt();
        assert_eq!(text, "The quick brown cat sat.");
        assert_eq!(&text[at], " cat");
    }
}
