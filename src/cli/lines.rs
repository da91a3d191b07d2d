//! The loop every line-oriented subcommand shares: one input text per argument or stdin line,
//! exactly one output per input in order, a line that is not UTF-8 reported as an error (and
//! the run goes on), a closed pipe ending the run quietly, exit status 1 when any line failed.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use serde::Serialize;

use super::fatal::Fatal;
use crate::analysis::report::ErrorReport;

/// One input text, or the error it gives (a stdin line that is not UTF-8 keeps its text, made
/// lossy, so that output stays one line per input line).
type Input = Result<String, String>;

/// Send the input texts to `tx` in batches: the arguments `max` at a time, or else the lines
/// of stdin — each batch every complete line already read (up to `max`), so that lines
/// written together are scored together, and a line written alone is sent at once.
fn send_inputs(args: Vec<String>, max: usize, tx: &std::sync::mpsc::SyncSender<Vec<Input>>) {
    if !args.is_empty() {
        let mut args = args.into_iter().map(Ok).peekable();
        while args.peek().is_some() {
            if tx.send(args.by_ref().take(max).collect()).is_err() {
                return;
            }
        }
        return;
    }
    let mut stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
    let mut ended = false;
    while !ended {
        let mut batch = Vec::new();
        // The first line of a batch may wait for input; the others are already buffered.
        while batch.len() < max && (batch.is_empty() || stdin.buffer().contains(&b'\n')) {
            let mut bytes = Vec::new();
            match stdin.read_until(b'\n', &mut bytes) {
                Ok(0) => ended = true,
                Ok(_) => batch.push(stdin_line(bytes)),
                Err(e) => {
                    batch.push(Err(format!("cannot read stdin: {e}")));
                    ended = true;
                }
            }
            if ended {
                break;
            }
        }
        if !batch.is_empty() && tx.send(batch).is_err() {
            return;
        }
    }
}

/// A stdin line without its line ending (`\n`, `\r\n`); not UTF-8 is an error.
fn stdin_line(mut bytes: Vec<u8>) -> Input {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One JSON object on one line (serialisation of these types cannot fail).
pub fn json_line(value: &impl Serialize) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot serialise the output: {e}") }).to_string()
    });
    line.push('\n');
    line
}

/// How a failed line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"text": …, "error": …}`
    Json,
    /// `error: …`
    Plain,
    /// A CSV row of this many columns: the line number first, the error last.
    Csv(usize),
}

/// The inputs being worked on, for [`error_for_current`]: their text and line number, and how
/// errors are written.
static CURRENT: std::sync::Mutex<Option<Current>> = std::sync::Mutex::new(None);

/// The texts being worked on with their line numbers, and how their errors are written.
type Current = (Vec<(String, usize)>, ErrorStyle);

/// When llama.cpp aborts in the middle of an input (an RPC server lost, an assertion), each
/// input being worked on still gets its error line on stdout before the process ends (status
/// 2, the reason on stderr): a script reading the output sees which inputs failed.
fn error_for_current(fault: &crate::model::abort::Fault<'_>) {
    let Ok(current) = CURRENT.try_lock() else {
        return;
    };
    if let Some((inputs, style)) = current.as_ref() {
        for (text, line) in inputs {
            let out = error_output(*style, text.clone(), fault.line.to_owned(), *line);
            // SAFETY: write(2) on stdout with a valid buffer; the process ends right after.
            unsafe {
                libc::write(1, out.as_ptr().cast(), out.len());
            }
        }
    }
}

fn set_current(inputs: Option<Current>) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = inputs;
    }
}

fn error_output(style: ErrorStyle, text: String, error: String, line: usize) -> String {
    match style {
        ErrorStyle::Json => json_line(&ErrorReport { text, error }),
        ErrorStyle::Plain => format!("error: {error}\n"),
        ErrorStyle::Csv(columns) => crate::analysis::report::csv_error(line, columns, &error),
    }
}

/// Run `each` over every input text, writing what it returns (the complete output for that
/// text) or its error.
pub fn for_each_text(
    texts: Vec<String>,
    errors: ErrorStyle,
    mut each: impl FnMut(&str) -> Result<String, String>,
) -> Result<ExitCode, Fatal> {
    for_each_group(texts, errors, 1, |group| {
        group.iter().map(|t| each(t)).collect()
    })
}

/// Run `each` over groups of up to `max` input texts — the texts already there (stdin is read
/// on its own thread: a group never waits for lines not yet written, so a script that writes
/// a line and waits for its answer gets it) — writing, in input order, what it returns for
/// each text (its complete output) or its error.
pub fn for_each_group(
    texts: Vec<String>,
    errors: ErrorStyle,
    max: usize,
    mut each: impl FnMut(&[String]) -> Vec<Result<String, String>>,
) -> Result<ExitCode, Fatal> {
    crate::model::abort::on_abort_run(error_for_current);
    let max = max.max(1);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Input>>(4);
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || send_inputs(texts, max, &tx))
        .map_err(|e| Fatal::other(format!("cannot read the input: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    let mut line = 0;
    // Inputs read but not yet worked on: a group takes up to `max` of them, never waiting for
    // more when some are there.
    let mut pending: std::collections::VecDeque<Input> = std::collections::VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv() {
                Ok(batch) => pending.extend(batch),
                Err(_) => break,
            }
        }
        while pending.len() < max {
            match rx.try_recv() {
                Ok(batch) => pending.extend(batch),
                Err(_) => break,
            }
        }
        let inputs: Vec<Input> = pending.drain(..pending.len().min(max)).collect();
        // Lines that are not UTF-8 fail here; the others go to `each` together.
        let texts: Vec<String> = inputs
            .iter()
            .filter_map(|t| t.as_ref().ok().cloned())
            .collect();
        let numbered: Vec<(String, usize)> = inputs
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_ok())
            .map(|(k, t)| (t.clone().unwrap_or_default(), line + k + 1))
            .collect();
        set_current(Some((numbered, errors)));
        let mut results = if texts.is_empty() {
            Vec::new()
        } else {
            each(&texts)
        }
        .into_iter();
        set_current(None);
        let mut output = String::new();
        for input in inputs {
            line += 1;
            let (text, result) = match input {
                Ok(text) => {
                    let r = results
                        .next()
                        .unwrap_or_else(|| Err("no result for this line".into()));
                    (text, r)
                }
                Err(lossy) => (lossy, Err("the line is not valid UTF-8".into())),
            };
            output.push_str(&result.unwrap_or_else(|error| {
                failed = true;
                error_output(errors, text, error, line)
            }));
        }
        if let Err(e) = stdout
            .write_all(output.as_bytes())
            .and_then(|()| stdout.flush())
        {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(Fatal::other(format!("cannot write output: {e}")));
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
