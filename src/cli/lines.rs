//! The loop every line-oriented subcommand shares: one input text per argument or stdin line,
//! exactly one output per input in order, a line that is not UTF-8 reported as an error (and
//! the run goes on), a closed pipe ending the run quietly, exit status 1 when any line failed.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use serde::Serialize;

use super::fatal::Fatal;
use crate::analysis::report::ErrorReport;

/// Input texts: the arguments, or else each line of stdin. A stdin line that is not UTF-8 is
/// kept as an error (with its text made lossy) so that output stays one line per input line.
pub fn input_texts(args: Vec<String>) -> Box<dyn Iterator<Item = Result<String, String>>> {
    if !args.is_empty() {
        return Box::new(args.into_iter().map(Ok));
    }
    let stdin = std::io::stdin().lock();
    Box::new(stdin.split(b'\n').map(|line| match line {
        Ok(mut bytes) => {
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            String::from_utf8(bytes).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        }
        Err(e) => Err(format!("cannot read stdin: {e}")),
    }))
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

/// Run `each` over every input text, writing what it returns (the complete output for that
/// text) or its error.
pub fn for_each_text(
    texts: Vec<String>,
    errors: ErrorStyle,
    mut each: impl FnMut(&str) -> Result<String, String>,
) -> Result<ExitCode, Fatal> {
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    for (index, text) in input_texts(texts).enumerate() {
        let line = index + 1;
        let (text, result) = match text {
            Ok(text) => {
                let result = each(&text);
                (text, result)
            }
            Err(lossy) => (lossy, Err("the line is not valid UTF-8".into())),
        };
        let output = result.unwrap_or_else(|error| {
            failed = true;
            match errors {
                ErrorStyle::Json => json_line(&ErrorReport { text, error }),
                ErrorStyle::Plain => format!("error: {error}\n"),
                ErrorStyle::Csv(columns) => {
                    crate::analysis::report::csv_error(line, columns, &error)
                }
            }
        });
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
