//! Hostile text through `score`, `fill` and the explorer: every input gives a correct result
//! or a clear per-line error, one output line per input line, in order, and nothing raw
//! reaches the terminal.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;

fn run_lines(cmd: &str, extra: &[&str], lines: &[Vec<u8>]) -> (Option<i32>, Vec<Value>) {
    let model = common::model_arg();
    let mut args = vec![cmd, "-m", &model, "-c", "256"];
    args.extend_from_slice(extra);
    let input: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let out = common::run(&args, Some(&input));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("GGML_ASSERT"),
        "{err}"
    );
    (out.status.code(), common::json_lines(&out))
}

fn stdin_lines() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = common::hostile_inputs()
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t.into_bytes()))
        .collect();
    v.push(("invalid UTF-8".into(), b"bad \xff\xfe bytes \xc3".to_vec()));
    v.push((
        "CR at the end (CRLF input)".into(),
        b"windows line\r".to_vec(),
    ));
    v
}

#[test]
fn score_gives_one_correct_line_or_a_clear_error_per_input() {
    let cases = stdin_lines();
    let lines: Vec<Vec<u8>> = cases.iter().map(|c| c.1.clone()).collect();
    let (status, out) = run_lines("score", &[], &lines);
    assert_eq!(out.len(), cases.len(), "one output line per input line");
    assert_eq!(status, Some(1), "some lines fail (empty, invalid UTF-8)");
    let mut report = Vec::new();
    for ((name, bytes), v) in cases.iter().zip(&out) {
        if let Some(e) = v["error"].as_str() {
            assert!(!e.is_empty());
            assert!(
                name == "empty" || name == "invalid UTF-8",
                "{name}: unexpected error {e}"
            );
            report.push(format!("{name}: error: {e}"));
            continue;
        }
        // The tokens spell the text back, byte for byte (a prefix when truncated).
        let spelled = common::token_bytes(v);
        let text = if name == "CR at the end (CRLF input)" {
            &bytes[..bytes.len() - 1]
        } else {
            &bytes[..]
        };
        if v["truncated"] == true {
            assert!(text.starts_with(&spelled), "{name}: a prefix");
            assert_eq!(v["tokens"].as_array().unwrap().len(), 256);
        } else {
            assert_eq!(spelled, text, "{name}: tokens spell the text");
        }
        assert_eq!(v["text"].as_str().unwrap().as_bytes(), text);
        // Special-token text is plain text, never a control token.
        assert!(
            v["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["special"] == false),
            "{name}"
        );
        for t in v["tokens"].as_array().unwrap().iter().skip(1) {
            let lp = t["logprob"].as_f64().unwrap();
            assert!(lp <= 0.0 && lp.is_finite(), "{name}");
        }
        report.push(format!(
            "{name}: {} tokens{}",
            v["tokens"].as_array().unwrap().len(),
            if v["truncated"] == true {
                " (truncated to n_ctx)"
            } else {
                ""
            }
        ));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn score_arguments_may_hold_newlines_and_tabs() {
    let model = common::model_arg();
    let out = common::run(
        &["score", "-m", &model, "line one\nline two\ttab", "second"],
        None,
    );
    assert!(out.status.success());
    let v = common::json_lines(&out);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["text"], "line one\nline two\ttab");
}

#[test]
fn fill_gives_one_line_per_input() {
    let cases = stdin_lines();
    let lines: Vec<Vec<u8>> = cases.iter().map(|c| c.1.clone()).collect();
    let (status, out) = run_lines("fill", &["--n-candidates", "3", "--search", "20"], &lines);
    assert_eq!(out.len(), cases.len());
    assert_eq!(status, Some(1));
    let mut report = Vec::new();
    for ((name, _), v) in cases.iter().zip(&out) {
        if let Some(e) = v["error"].as_str() {
            report.push(format!("{name}: error: {e}"));
            continue;
        }
        let blanks = v["blanks"].as_array().unwrap();
        assert!(!blanks.is_empty(), "{name}");
        for b in blanks {
            let c = b["candidates"].as_array().unwrap();
            assert!(!c.is_empty(), "{name}");
            let total: f64 = c.iter().map(|x| x["posterior"].as_f64().unwrap()).sum();
            assert!((total - 1.0).abs() < 1e-9, "{name}");
        }
        report.push(format!(
            "{name}: {} blank(s), best {:?}",
            blanks.len(),
            blanks[0]["candidates"][0]["text"]
        ));
    }
    let by_name = |n: &str| &out[cases.iter().position(|c| c.0 == n).unwrap()];
    assert!(by_name("1,000 blanks")["error"]
        .as_str()
        .unwrap()
        .contains("too many blanks"));
    // A lone blank has no left context; the search still proposes words.
    assert!(!by_name("a blank alone")["blanks"][0]["candidates"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(by_name("empty")["error"].is_string());
    assert!(by_name("invalid UTF-8")["error"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    eprintln!("{}", report.join("\n"));
}
