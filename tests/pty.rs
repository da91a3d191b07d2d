//! The real binary in a real pseudo-terminal (tmux), on the real default model: type, read the
//! screen, quit, and check the terminal was given back — also after signals and load failures.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    name: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Start `logitscope ARGS` in a detached tmux session of the given size. Afterwards the
    /// shell prints the exit status and the terminal's modes, so the test can read them.
    fn start(tag: &str, args: &str, w: u16, h: u16) -> Tmux {
        Self::start_env(tag, "", args, w, h)
    }

    /// Several explorers run at once on few cores: OpenMP's spinning barriers (its default
    /// wait policy) let one process's waiting threads starve another's working ones until a
    /// decode takes minutes, so the explorers here wait passively.
    fn start_env(tag: &str, env: &str, args: &str, w: u16, h: u16) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("ls-{tag}-{}", std::process::id());
        let d = dir.path().display();
        let script = format!(
            "cd {d}; echo $$ > pid; export LOGITSCOPE_DATA_DIR={d}/data LOGITSCOPE_STATE_DIR={d} \
             OMP_WAIT_POLICY=PASSIVE; \
             {env} {bin} {args}; echo EXIT=$? > status; stty -a > stty; sleep 600",
            bin = common::bin(),
        );
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &name])
            .output();
        // Tests start sessions at once: when one of them starts the tmux server, another's
        // `new-session` can lose the race ("server exited unexpectedly"); try again.
        let mut last = String::new();
        let started = (0..5).any(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(300 * attempt as u64));
                let _ = Command::new("tmux")
                    .args(["kill-session", "-t", &name])
                    .output();
            }
            let out = Command::new("tmux")
                .args([
                    "new-session",
                    "-d",
                    "-s",
                    &name,
                    "-x",
                    &w.to_string(),
                    "-y",
                    &h.to_string(),
                ])
                .arg(format!("sh -c '{}'", script.replace('\'', "'\\''")))
                .output()
                .unwrap();
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            out.status.success()
        });
        assert!(
            started,
            "tmux is needed for these tests (./dev test installs it); it said: {last}"
        );
        Tmux { name, dir }
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
    }

    fn literal(&self, text: &str) {
        Command::new("tmux")
            .args(["send-keys", "-l", "-t", &self.name, text])
            .status()
            .unwrap();
    }

    fn flag(&self, f: &str) -> String {
        let out = Command::new("tmux")
            .args([
                "display-message",
                "-p",
                "-t",
                &self.name,
                &format!("#{{{f}}}"),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(name)).ok()
    }

    /// Wait until the program exited; return its exit status.
    fn exit_status(&self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(s) = self.file("status") {
                if self.file("stty").is_some_and(|s| !s.is_empty()) {
                    return s.trim().trim_start_matches("EXIT=").parse().unwrap();
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the program did not exit:\n{}",
                self.capture()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The terminal is back to normal: main screen, no mouse reporting, canonical mode with echo.
    fn assert_restored(&self) {
        assert_eq!(self.flag("alternate_on"), "0", "left the alternate screen");
        assert_eq!(self.flag("mouse_any_flag"), "0", "mouse reporting off");
        let stty = self.file("stty").unwrap();
        assert!(
            stty.contains(" icanon") && stty.contains(" echo "),
            "cooked mode: {stty}"
        );
    }

    /// The program's pid: the child of the shell (found in /proc, no procps needed).
    fn pid(&self) -> String {
        let Some(sh) = self.file("pid") else {
            return String::new();
        };
        let sh = sh.trim().to_owned();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if after.split_whitespace().nth(1) == Some(sh.as_str()) {
                return entry.file_name().to_string_lossy().into_owned();
            }
        }
        String::new()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

fn model_flag() -> String {
    format!("-m {}", common::model_path().display())
}

#[test]
fn typing_a_sentence_shows_salt_with_its_probability_and_quitting_restores_the_terminal() {
    let t = Tmux::start("salt", &model_flag(), 100, 30);
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("The chef carefully seasoned the soup with a pinch of");
    let screen = t.wait_for("salt", Duration::from_secs(30), |s| {
        s.lines().any(|l| l.contains("␣salt") && l.contains("0.62"))
    });
    let line = screen.lines().find(|l| l.contains("␣salt")).unwrap();
    assert!(
        line.trim_start_matches('│')
            .trim_start()
            .starts_with("1 ␣salt"),
        "{line}"
    );
    assert!(screen.contains("what comes next"));
    assert!(screen.contains("|V| 49152"));
    assert_eq!(t.flag("alternate_on"), "1");
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

#[test]
fn signals_during_load_and_evaluation_restore_the_terminal() {
    for (signal, during_eval) in [
        ("TERM", false),
        ("HUP", false),
        ("INT", false),
        ("TERM", true),
        ("HUP", true),
        ("INT", true),
    ] {
        // During load: the load is stretched (test hook) so the signal lands while the
        // loading screen is up.
        let args = model_flag();
        let t = if during_eval {
            Tmux::start(&format!("sig{signal}{during_eval}"), &args, 80, 24)
        } else {
            Tmux::start_env(
                &format!("sig{signal}{during_eval}"),
                "LOGITSCOPE_TEST_SLOW_LOAD_MS=40",
                &args,
                80,
                24,
            )
        };
        if during_eval {
            t.wait_for("ready", Duration::from_secs(30), |s| {
                s.contains("type a sentence")
            });
            // A long paste keeps the engine busy for seconds.
            let long = "the cat sat on the mat and ".repeat(150);
            Command::new("tmux")
                .args(["set-buffer", "-b", "long", &long])
                .status()
                .unwrap();
            Command::new("tmux")
                .args(["paste-buffer", "-p", "-b", "long", "-t", &t.name])
                .status()
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
        } else {
            t.wait_for("the loading screen", Duration::from_secs(30), |s| {
                s.contains("loading")
            });
        }
        let pid = {
            let start = Instant::now();
            loop {
                let p = t.pid();
                if !p.is_empty() || start.elapsed() > Duration::from_secs(5) {
                    break p;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        if !pid.is_empty() {
            // The shell's kill builtin: no procps needed.
            Command::new("sh")
                .args(["-c", &format!("kill -{signal} {pid}")])
                .status()
                .unwrap();
        }
        let status = t.exit_status();
        assert!(!pid.is_empty(), "SIG{signal}: the program was running");
        assert!(status == 0 || status >= 128, "SIG{signal}: exit {status}");
        t.assert_restored();
        assert!(!t.capture().contains("panicked"));
    }
}

#[test]
fn models_llama_cpp_rejects_end_the_explorer_with_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    for (name, arch, phrase) in [
        ("arch.gguf", "notanarch", "notanarch"),
        ("hollow.gguf", "llama", "rejected by llama.cpp"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            common::synth::synthetic_gguf(arch, &[("output.weight", &[64, 8], 0)]),
        )
        .unwrap();
        let t = Tmux::start(
            &format!("reject-{arch}"),
            &format!("-m {}", path.display()),
            80,
            24,
        );
        assert_eq!(t.exit_status(), 2);
        t.assert_restored();
        let screen = t.capture();
        let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{screen}");
        assert!(lines[0].contains(phrase) && lines[0].contains(&path.display().to_string()));
    }
}

#[test]
fn hostile_pastes_leave_the_explorer_sane() {
    let t = Tmux::start("hostile", &format!("{} -c 512", model_flag()), 100, 30);
    t.wait_for("ready", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    // Every hostile text of the score/fill matrix, plus what only a paste can carry.
    let mut cases: Vec<(&str, Vec<u8>)> = common::hostile_inputs()
        .into_iter()
        .map(|(n, t)| (n, t.into_bytes()))
        .collect();
    cases.push(("multi-line paste", b"one\ntwo\r\nthree\tfour".to_vec()));
    cases.push(("invalid UTF-8", b"bad \xff\xfe bytes".to_vec()));
    for (i, (name, mut bytes)) in cases.into_iter().enumerate() {
        // A marker at the end shows when the paste has landed on screen.
        let marker = format!(" zq{i}");
        bytes.extend_from_slice(marker.as_bytes());
        let file = t.dir.path().join("paste");
        std::fs::write(&file, &bytes).unwrap();
        Command::new("tmux")
            .args(["load-buffer", "-b", "h"])
            .arg(&file)
            .status()
            .unwrap();
        Command::new("tmux")
            .args(["paste-buffer", "-p", "-b", "h", "-t", &t.name])
            .status()
            .unwrap();
        let screen = t.wait_for(name, Duration::from_secs(60), |s| {
            s.contains("F1 help")
                && s.contains("type a sentence")
                && s.contains(marker.trim())
                && !s.contains("evaluating")
        });
        assert_eq!(t.flag("alternate_on"), "1", "{name}: still running");
        if name == "ANSI escapes" {
            // ESC itself becomes a space in the input line: the rest shows as plain text, and
            // the screen was not cleared by `ESC [2J`.
            assert!(
                screen.contains(" [31mred [0m  [2J ]0;title"),
                "{name}:\n{screen}"
            );
        }
        if name == "200,000 characters" || name == "1,000 blanks" || name == "one long word" {
            t.wait_for("truncation", Duration::from_secs(60), |s| {
                s.contains("context full")
            });
        }
        if name == "multi-line paste" {
            assert!(screen.contains("one two  three four"), "{name}:\n{screen}");
        }
        t.keys(&["C-u"]);
    }
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// Wait for the explorer, then type a text with a blank near its start: every candidate
/// re-scores ≈ 60 tokens, so its fill takes a while.
fn type_a_long_text_with_an_early_blank(t: &Tmux) {
    t.wait_for("ready", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal(
        "The ____ barked at the mailman all morning, and the neighbours, who had been trying \
         to sleep after a long night shift at the hospital on the other side of the town, \
         finally came out in their dressing gowns to complain to the owner about the noise.",
    );
}

/// Fill-in in the explorer: a long text's re-scoring shows its progress, typing cancels it (the
/// log says so), and the new blank's candidates arrive re-ranked, salt first.
#[test]
fn fill_in_shows_progress_is_cancelled_by_typing_and_ranks_salt_first() {
    let t = Tmux::start("fill", &model_flag(), 120, 40);
    type_a_long_text_with_an_early_blank(&t);
    let progress = |s: &str| -> Option<(usize, usize)> {
        let rest = s.split("re-scoring blank 1 … ").nth(1)?;
        let (done, rest) = rest.split_once('/')?;
        let total = rest.split_whitespace().next()?;
        Some((done.parse().ok()?, total.parse().ok()?))
    };
    let screen = t.wait_for("fill progress", Duration::from_secs(60), |s| {
        progress(s).is_some_and(|(d, total)| d > 0 && d < total)
    });
    let (done, total) = progress(&screen).unwrap();
    t.keys(&["C-u"]);
    t.literal("The chef carefully seasoned the soup with a pinch of ____.");
    let screen = t.wait_for("the re-ranked candidates", Duration::from_secs(60), |s| {
        s.contains("left context vs whole sentence") && s.contains("salt")
    });
    // The first candidate row: left-only ␣salt, and salt first by the whole sentence.
    let row = screen
        .lines()
        .find(|l| l.contains("│ 1 ␣salt"))
        .unwrap_or_else(|| panic!("no first row:\n{screen}"));
    let sentence_col: Vec<&str> = row
        .split("│ 1 ␣salt")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(sentence_col.get(1), Some(&"salt"), "{row}");
    let log = t.file("logitscope.log").unwrap_or_default();
    assert!(
        log.contains("cancelled by newer input"),
        "the long fill ({done}/{total} when typing resumed) was cancelled:\n{log}"
    );
    assert!(log.contains("1 blank(s), "), "{log}");
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// The display column where each top-k row of the distribution panel prints its probability.
fn p_columns(screen: &str) -> Vec<usize> {
    use unicode_width::UnicodeWidthStr;
    screen
        .lines()
        .filter_map(|l| {
            // "│  1 <U+FE0F>       ████···  0.5091   -0.675"
            let bar = l.find(['█', '·'])?;
            let after = &l[bar..];
            let p = after.find(" 0.").or_else(|| after.find(" 1."))?;
            Some(l[..bar + p].width())
        })
        .collect()
}

/// Defect: after "I ❤" the top prediction is U+FE0F (zero display width); its label was
/// invisible and every column after it moved left.
#[test]
fn i_heart_keeps_the_distribution_columns_aligned() {
    let t = Tmux::start("heart", &model_flag(), 100, 30);
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("I ❤");
    let screen = t.wait_for("the prediction", Duration::from_secs(30), |s| {
        s.contains("what comes next") && s.contains("<U+FE0F>")
    });
    let cols = p_columns(&screen);
    assert!(cols.len() >= 8, "rows found: {cols:?}\n{screen}");
    assert!(cols.iter().all(|&c| c == cols[0]), "{cols:?}\n{screen}");
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

fn patched_model(dir: &std::path::Path, layers: u32) -> std::path::PathBuf {
    common::edited_model(
        dir,
        &format!("layers-{layers}.gguf"),
        &[("llama.block_count", Some(common::gguf_edit::V::U32(layers)))],
    )
}

/// The explorer on the default model patched to 0 and 1000 layers: refused with one line and
/// status 2 by the pre-flight check; and, with that check switched off (a test hook), by
/// ggml's abort callback while the screen is taken — the terminal is given back either way.
#[test]
fn patched_layer_counts_end_the_explorer_with_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    for (layers, env, phrase) in [
        (0, "", "llama.block_count is 0"),
        (1000, "", "llama.block_count is 1000"),
        (
            1000,
            "LOGITSCOPE_TEST_SKIP_PREFLIGHT=1",
            "llama.cpp aborted: llama-model.cpp:1330: GGML_ASSERT",
        ),
    ] {
        let path = patched_model(dir.path(), layers);
        let t = Tmux::start_env(
            &format!("layers-{layers}-{}", env.len()),
            env,
            &format!("-m {}", path.display()),
            100,
            24,
        );
        assert_eq!(t.exit_status(), 2, "{}", t.capture());
        t.assert_restored();
        let screen = t.capture();
        let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{screen}");
        assert!(lines[0].contains(phrase), "{screen}");
    }
}

/// Defect: a panic on the engine thread left the explorer waiting forever for an answer. Now
/// it ends with the panic's message, the log's path and status 2.
#[test]
fn an_engine_panic_ends_the_explorer_with_its_message_and_status_2() {
    let t = Tmux::start_env(
        "panic",
        "LOGITSCOPE_TEST_ENGINE_PANIC=1",
        &model_flag(),
        100,
        30,
    );
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("boom \u{1F4A5}panic-the-engine\u{1F4A5}");
    assert_eq!(t.exit_status(), 2, "{}", t.capture());
    t.assert_restored();
    let screen = t.capture();
    assert!(
        screen.contains("the engine thread panicked: test hook: the engine was asked to panic"),
        "{screen}"
    );
    assert!(
        screen.contains("logitscope.log"),
        "the log is named: {screen}"
    );
}

/// Defect: a fill kept running after its blank was deleted. Deleting the blank now cancels it
/// (the worker logs the cancel), and the evaluation of the text is not kept waiting.
#[test]
fn deleting_the_blank_cancels_a_running_fill() {
    let t = Tmux::start("unblank", &model_flag(), 120, 40);
    type_a_long_text_with_an_early_blank(&t);
    t.wait_for("fill progress", Duration::from_secs(60), |s| {
        s.contains("re-scoring blank 1 … ") && !s.contains("… 0/")
    });
    // One edit that removes the blank: the cursor after "The ____", Ctrl-W deletes back over
    // the underscores and "The".
    t.keys(&["Home"]);
    for _ in 0.."The ____".len() {
        t.keys(&["Right"]);
    }
    let before = t.file("logitscope.log").unwrap_or_default().len();
    t.keys(&["C-w"]);
    t.wait_for("the sentence chart", Duration::from_secs(30), |s| {
        s.contains("sentence: entropy and surprisal") && !s.contains("evaluating…")
    });
    // The fill either stops (cancelled) or runs to its end ("done"): wait for one of them.
    let start = Instant::now();
    let log = loop {
        let log = t.file("logitscope.log").unwrap_or_default();
        let log = log.get(before..).unwrap_or_default().to_owned();
        if log.contains("cancelled by newer input") || log.contains(" done in ") {
            break log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the fill never ended:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        log.contains("cancelled by newer input") && !log.contains(" done in "),
        "the fill of a deleted blank ran to its end:\n{log}"
    );
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
    // Defect: quitting through process::exit skipped the log guard; the last line is there.
    let log = t.file("logitscope.log").unwrap_or_default();
    assert!(
        log.trim_end().ends_with("explorer closed"),
        "the log's last line was lost:\n{log}"
    );
}

/// The vocabulary search in the explorer: its progress shows while it runs, and when it ends
/// the panel holds a word the shortlist did not (marked + : found by the search); typing while
/// a search runs cancels it (the log says so).
#[test]
fn the_search_shows_progress_finds_sun_and_typing_cancels_it() {
    let t = Tmux::start("search", &model_flag(), 120, 40);
    t.wait_for("ready", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("The ____ rises in the east and sets in the west.");
    t.wait_for("the search's progress", Duration::from_secs(60), |s| {
        s.contains("searching blank 1 …")
    });
    // The default budget on a CPU: 20 s of searching, then the panel says how far it got.
    let screen = t.wait_for("the search's end", Duration::from_secs(120), |s| {
        s.contains("of 31,664 words (20s budget)")
    });
    let row = screen
        .lines()
        .find(|l| l.contains("│ 1 "))
        .unwrap_or_else(|| panic!("no first row:\n{screen}"));
    assert!(
        row.contains("+sun"),
        "sun, found by the search, first: {row}\n{screen}"
    );
    // The strip shows the sentence with its fill.
    t.wait_for("the filled sentence", Duration::from_secs(30), |s| {
        s.contains("blanks hold their best fill") && s.contains("␣sun")
    });
    // A new search, interrupted by typing.
    t.keys(&["End"]);
    t.literal(" It is");
    t.wait_for("a new search", Duration::from_secs(60), |s| {
        s.contains("searching blank 1 …")
    });
    let before = t.file("logitscope.log").unwrap_or_default().len();
    t.literal(" hot");
    let start = Instant::now();
    loop {
        let log = t.file("logitscope.log").unwrap_or_default();
        if log[before.min(log.len())..].contains("cancelled by newer input") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "typing did not cancel the search:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// Two models in the explorer: a second quantization of the default model (made with
/// `logitscope quantize`), a typed sentence, the comparison on screen.
#[test]
fn comparing_two_models_shows_where_they_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let q4_0 = dir.path().join("q4_0.gguf");
    let made = Command::new(common::bin())
        .args(["-m", &common::model_arg(), "quantize"])
        .arg(&q4_0)
        .args(["--type", "q4_0"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let t = Tmux::start(
        "compare",
        &format!("{} --vs {}", model_flag(), q4_0.display()),
        120,
        36,
    );
    t.wait_for("the input line", Duration::from_secs(60), |s| {
        s.contains("type a sentence")
    });
    t.literal("The chef carefully seasoned the soup with a pinch of");
    let screen = t.wait_for("the comparison", Duration::from_secs(60), |s| {
        s.contains("KL(A‖B)") && s.contains("what comes next · A vs B")
    });
    assert!(screen.contains("vs B q4_0.gguf"), "{screen}");
    assert!(screen.contains("p A") && screen.contains("p B"), "{screen}");
    t.keys(&["F6", "F6"]);
    t.wait_for("the strip shaded by KL", Duration::from_secs(10), |s| {
        s.contains("A vs B: █ KL≥1 bit")
    });
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// Reading aids in the real explorer: a watch-list given on the command line and edited with
/// F7, the word view (F8), and an export (Ctrl-S) whose file parses as the documented JSON.
#[test]
fn watch_words_and_export_in_the_explorer() {
    let t = Tmux::start(
        "export",
        &format!("{} --watch he,she", model_flag()),
        120,
        40,
    );
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("The doctor said that");
    t.wait_for("the watched words", Duration::from_secs(30), |s| {
        s.contains("watched") && s.contains("␣she") && s.contains("▀ he")
    });
    // F7: add a word of several tokens; it is decoded at the selected position.
    t.keys(&["F7"]);
    t.wait_for("the watch line", Duration::from_secs(10), |s| {
        s.contains("watch (comma-separated")
    });
    t.literal(", Yogyakarta");
    t.keys(&["Enter"]);
    t.wait_for("the new word", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("␣Yogyakarta") && l.contains("tokens"))
    });
    t.keys(&["F8"]);
    t.wait_for("the word view", Duration::from_secs(10), |s| {
        s.contains("words: █ p≥0.5")
    });
    t.keys(&["C-s"]);
    let screen = t.wait_for("the export's path", Duration::from_secs(10), |s| {
        s.contains("exported to ")
    });
    let path = screen
        .split("exported to ")
        .nth(1)
        .unwrap()
        .split(" │")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert!(path.contains("/data/exports/logitscope-"), "{path}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["score"]["text"], "The doctor said that");
    assert_eq!(v["watch"], serde_json::json!(["he", "she", "Yogyakarta"]));
    assert!(v["score"]["tokens"].as_array().unwrap().len() >= 4);
    assert!(v["score"]["words"].as_array().unwrap().len() >= 4);
    assert!(v["score"]["total_logprob"].is_f64());
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

#[test]
fn the_lens_and_h_times_w_on_the_real_model() {
    let t = Tmux::start("lens", &model_flag(), 120, 50);
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("The chef carefully seasoned the soup with a pinch of salt.");
    t.wait_for("the scored sentence", Duration::from_secs(30), |s| {
        s.contains("12 tokens")
    });
    // Select " salt" (the chip before "." and "next"), then open the lens.
    t.keys(&["S-Left", "S-Left", "F9"]);
    let screen = t.wait_for("the lens of ␣salt", Duration::from_secs(30), |s| {
        s.contains("␣salt is the top token from layer 29 (of 0–29) on")
            && s.contains("logit lens · top token · 30 layers")
            && s.contains("last layer = output: max |Δp|")
    });
    // Every layer's row is there, numbered, the last one included.
    for l in [0, 14, 29] {
        assert!(
            screen
                .lines()
                .any(|line| line.contains(&format!("│{l:>3} "))),
            "layer {l} missing:\n{screen}"
        );
    }
    t.keys(&["F10"]);
    t.wait_for("the H·W panel", Duration::from_secs(30), |s| {
        s.contains("H·W at position 9 · predicts ␣salt")
            && s.contains("576 × 49152, Q8_0, tied")
            && s.contains("max |Δ| over all 49152 logits")
    });
    t.keys(&["F10"]);
    t.wait_for("the distribution again", Duration::from_secs(10), |s| {
        s.contains("◂ actual")
    });
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// Type "The cat sat on the", wait for it to be scored, open the lens (F9) and wait for it.
fn open_the_lens_on_the_cat_sat_on_the(t: &Tmux) {
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("The cat sat on the");
    t.wait_for("the scored sentence", Duration::from_secs(30), |s| {
        s.contains("5 tokens")
    });
    t.keys(&["F9"]);
    t.wait_for("the first lens", Duration::from_secs(30), |s| {
        s.contains("logit lens · top token · 30 layers") && !s.contains("Computing the lens")
    });
}

/// Defect: after the line was cleared, "Computing the lens…" stayed for minutes — the clear
/// cancelled lens jobs with the keystroke generation, which every later lens request (counted
/// on its own) looked older than.
#[test]
fn the_lens_appears_for_a_new_text_after_the_line_is_cleared() {
    let t = Tmux::start("lens-clear", &model_flag(), 120, 50);
    open_the_lens_on_the_cat_sat_on_the(&t);
    t.keys(&["C-u"]);
    t.literal("Paris is the capital of");
    // The grid is drawn (its cells dotted) before the position's layers arrive: wait for
    // the self-check line, which comes with them.
    t.wait_for("the lens of the new text", Duration::from_secs(60), |s| {
        s.contains("logit lens · top token · 30 layers")
            && !s.contains("Computing the lens")
            && s.contains("capital")
            && s.contains("last layer = output: max |Δp|")
    });
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// Issue 40: with the lens open, a keystroke is one decode (the readers' decode evaluates the
/// text and answers the lens), read from the engine's debug log in a real terminal.
#[test]
fn with_the_lens_open_a_keystroke_is_one_decode() {
    let t = Tmux::start_env("one-decode", "LOGITSCOPE_LOG=debug", &model_flag(), 120, 50);
    open_the_lens_on_the_cat_sat_on_the(&t);
    // Each word waited for: its lens drawn, with the self-check line that comes with it.
    for (word, tokens) in [
        (" mat", "6 tokens"),
        (" and", "7 tokens"),
        (" slept", "8 tokens"),
    ] {
        t.literal(word);
        t.wait_for(word, Duration::from_secs(60), |s| {
            s.contains(tokens)
                && !s.contains("Computing the lens")
                && s.contains("last layer = output: max |Δp|")
        });
    }
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    let log = t.file("logitscope.log").unwrap();
    let jobs: Vec<(&str, usize)> = log
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("worker: ")?;
            let (kind, rest) = rest.split_once(" job: ")?;
            let n = rest.split_once(' ')?.0.parse().ok()?;
            Some((kind, n))
        })
        .collect();
    let first_lens = jobs
        .iter()
        .position(|(k, _)| *k == "Lens")
        .expect("a lens job");
    let after = &jobs[first_lens + 1..];
    let evaluations = after
        .iter()
        .filter(|(k, _)| k.starts_with("Evaluate"))
        .count();
    assert!(
        evaluations >= 3,
        "one evaluation per word at least: {jobs:?}"
    );
    for (kind, n) in after {
        match *kind {
            k if k.starts_with("Evaluate") => assert!(*n <= 1, "{jobs:?}"),
            "Lens" => assert_eq!(*n, 0, "the lens reads the keystroke's decode: {jobs:?}"),
            _ => {}
        }
    }
    let decodes: usize = after.iter().map(|(_, n)| n).sum();
    assert!(
        decodes <= evaluations,
        "{decodes} decodes for {evaluations} evaluations: {jobs:?}"
    );
}

/// A model whose lens fails its self-check: the explorer says so and stays usable.
#[test]
fn a_lens_that_fails_its_check_is_shown_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::softcapped_model(dir.path());
    let t = Tmux::start(
        "lens-unavailable",
        &format!("-m {}", path.display()),
        100,
        30,
    );
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal("The cat sat on the mat.");
    t.keys(&["F9"]);
    t.wait_for("the lens refused", Duration::from_secs(30), |s| {
        s.contains("Logit lens unavailable for this model")
    });
    t.keys(&["F9"]);
    t.literal(" It");
    t.wait_for("typing still works", Duration::from_secs(30), |s| {
        s.contains("◂ actual") || s.contains("what comes next")
    });
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// An RPC server lost while the explorer runs: the screen says so and keeps what it shows;
/// quitting prints the line and ends with status 2, at once.
#[test]
fn a_lost_rpc_server_is_shown_and_the_explorer_stays_usable() {
    let mut server = common::rpc_server::Server::start();
    let t = Tmux::start(
        "rpc-lost",
        &format!("{} --rpc 127.0.0.1:{}", model_flag(), server.port),
        120,
        30,
    );
    t.wait_for("the offloaded model", Duration::from_secs(30), |s| {
        s.contains("type a sentence") && s.contains("RPC0 (127.0.0.1:") && s.contains("31 layers")
    });
    t.literal("The cat sat on the");
    t.wait_for("the scored sentence", Duration::from_secs(30), |s| {
        s.contains("5 tokens")
    });
    server.kill();
    t.literal(" mat");
    t.wait_for("the lost server", Duration::from_secs(30), |s| {
        s.contains("model lost, what is shown stays, Esc quits: lost the RPC server")
            && s.contains("␣sat ")
    });
    // Still usable: the selection moves over what was scored.
    t.keys(&["S-Left"]);
    t.wait_for("the selection moved", Duration::from_secs(10), |s| {
        s.contains("token 4 ␣the")
    });
    let quit = std::time::Instant::now();
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 2);
    assert!(
        quit.elapsed() < Duration::from_secs(4),
        "{:?}",
        quit.elapsed()
    );
    t.assert_restored();
}

/// The minimal pair on the real model: two sentences typed, the preferred one and Δ total read
/// from the screen, the same as `logitscope pairs` says for them.
#[test]
fn a_minimal_pair_typed_in_the_explorer_agrees_with_pairs() {
    let a = "The keys to the cabinet are on the table.";
    let b = "The keys to the cabinet is on the table.";
    let t = Tmux::start("pair", &model_flag(), 110, 40);
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal(a);
    t.wait_for("the scored sentence", Duration::from_secs(30), |s| {
        s.contains("10 tokens")
    });
    t.keys(&["C-p"]);
    t.wait_for("the pair view", Duration::from_secs(30), |s| {
        s.contains("minimal pair") && s.contains("B › ")
    });
    t.keys(&["C-u"]);
    t.literal(b);
    let screen = t.wait_for("both sentences compared", Duration::from_secs(60), |s| {
        s.contains("Δ(B−A)")
            && s.contains(b)
            && !s.contains("evaluating…")
            && s.contains("decides at")
    });
    let line = screen.lines().find(|l| l.contains("Δ(B−A)")).unwrap();
    let delta: f64 = line
        .split("Δ(B−A) ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let prefers = if line.contains("prefers A") {
        "a"
    } else if line.contains("prefers B") {
        "b"
    } else {
        "tie"
    };
    let out = common::models::run_on(
        &common::model_path(),
        "pairs",
        &[],
        Some(&format!("{a}\t{b}\n")),
    );
    assert_eq!(out[0]["prefers"], prefers, "{screen}");
    let want = out[0]["delta"].as_f64().unwrap();
    assert!(
        (delta - want).abs() < 0.0006,
        "screen Δ {delta}, pairs Δ {want}\n{screen}"
    );
    // The changed token is marked.
    assert!(screen.contains("≠"), "{screen}");
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// F11 on the real model: the attention panel opens at the position that predicted the selected
/// token, with every layer and head of SmolLM2 (30 × 9, 3 KV heads), and the weight it shows
/// for head 0.0 on the first token is `score --attention-full`'s, to the digits shown.
#[test]
fn the_attention_panel_on_the_real_model_agrees_with_score() {
    let text = "The chef carefully seasoned the soup with a pinch of salt.";
    let t = Tmux::start("attention", &model_flag(), 120, 50);
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal(text);
    t.wait_for("the scored sentence", Duration::from_secs(30), |s| {
        s.contains("12 tokens")
    });
    // Select " salt" (token 10): position 9 predicted it.
    t.keys(&["S-Left", "S-Left", "F11"]);
    let screen = t.wait_for("the attention panel", Duration::from_secs(30), |s| {
        s.contains("attention at 9 (␣of) · 30 layers × 9 heads") && s.contains("head 0.0 (KV 0)")
    });
    let shown: f64 = screen
        .lines()
        .find_map(|l| l.split_once("  0 The ").map(|(_, rest)| rest.to_owned()))
        .and_then(|rest| rest.split_whitespace().find_map(|w| w.parse::<f64>().ok()))
        .unwrap_or_else(|| panic!("no weight on position 0:\n{screen}"));
    let scored = common::run_ok("score", &["--attention-full", text]);
    let row = &scored[0]["tokens"][10]["attention"][0]["heads"][0]["row"];
    let want = row[0].as_f64().unwrap();
    assert_eq!(format!("{shown:.3}"), format!("{want:.3}"), "{screen}");
    // Alt-↓ twice and Ctrl-↓: head 2.1, whose KV head is 0 (9 heads over 3 KV heads).
    t.keys(&["M-Down", "M-Down", "C-Down"]);
    t.wait_for("head 2.1", Duration::from_secs(10), |s| {
        s.contains("head 2.1 (KV 0)")
    });
    t.keys(&["F11"]);
    t.wait_for("the distribution again", Duration::from_secs(10), |s| {
        s.contains("◂ actual")
    });
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// Ctrl-K switches the last MLP off in the running explorer: ` salt` falls to the ablated
/// model's probability (that of `score --ablate`), shown beside the intact model's, the
/// status bar says what is off, the attribution panel splits the ablated logit, and an empty
/// line brings the intact model back.
#[test]
fn ablating_a_layer_in_the_explorer_shows_the_changed_probability() {
    let text = "The chef seasoned the soup with a pinch of salt.";
    let t = Tmux::start("ablate", &model_flag(), 110, 40);
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal(text);
    t.wait_for("the scored sentence", Duration::from_secs(30), |s| {
        s.contains("11 tokens")
    });
    // Token 9 is " salt".
    t.keys(&["S-Left", "S-Left"]);
    let intact = common::run_ok("score", &[text]);
    let p_intact = intact[0]["tokens"][9]["prob"].as_f64().unwrap();
    t.wait_for("salt selected", Duration::from_secs(10), |s| {
        s.contains(&format!("{p_intact:.4}")) && s.contains("◂ actual")
    });
    t.keys(&["C-k"]);
    t.wait_for("the ablation line", Duration::from_secs(10), |s| {
        s.contains("switch off (")
    });
    t.literal("ffn:29");
    t.keys(&["Enter"]);
    let ablated = common::run_ok("score", &["--ablate", "ffn:29", text]);
    let p_ablated = ablated[0]["tokens"][9]["prob"].as_f64().unwrap();
    assert!(p_ablated < p_intact / 5.0, "{p_ablated} vs {p_intact}");
    let want = format!("actual ␣salt: A p {p_ablated:.4}");
    let screen = t.wait_for("the ablated probability", Duration::from_secs(30), |s| {
        s.contains(&want)
    });
    assert!(screen.contains("ablate ffn:29 · Δ vs intact"), "{screen}");
    assert!(screen.contains("A ablate ffn:29 vs B intact"), "{screen}");
    assert!(
        screen.contains(&format!("B p {p_intact:.4}")),
        "the intact model beside it:\n{screen}"
    );
    // The attribution of the ablated logit: the switched-off part adds nothing.
    t.keys(&["F12"]);
    let screen = t.wait_for("the attribution panel", Duration::from_secs(30), |s| {
        s.contains("logit of ␣salt") && s.contains("Σ parts")
    });
    assert!(
        !screen.contains("ffn:29   "),
        "ffn:29 is 0, not among the largest:\n{screen}"
    );
    t.keys(&["F12", "C-k", "C-u", "Enter"]);
    let screen = t.wait_for("the intact model again", Duration::from_secs(30), |s| {
        s.contains(&format!("{p_intact:.4}")) && s.contains("◂ actual")
    });
    assert!(!screen.contains("ablate ffn:29"), "{screen}");
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// Ctrl-Y traces sentence A into sentence B on the real model: the grid fills in with a
/// progress bar, typing stops it and it starts over, and the cells equal `trace`'s: layer 0
/// at the last position, then the last layer there, which brings A's answer back whole.
#[test]
fn tracing_a_pair_in_the_explorer_shows_the_grid_of_trace() {
    let (clean, corrupt) = (
        "The Eiffel Tower is in the city of",
        "The Colosseum is in the city of",
    );
    let json = common::run_ok("trace", &[clean, corrupt]);
    let r = &json[0];
    let cells = r["grids"][0]["cells"].as_array().unwrap();
    let n_layer = r["n_layer"].as_u64().unwrap() as usize;
    let n = r["corrupt_tokens"].as_array().unwrap().len();
    let cell = |l: usize, i: usize| {
        cells
            .iter()
            .find(|c| c["layer"] == l && c["position"] == i)
            .unwrap()
    };
    let t = Tmux::start("trace", &model_flag(), 110, 40);
    t.wait_for("the input line", Duration::from_secs(30), |s| {
        s.contains("type a sentence")
    });
    t.literal(clean);
    t.wait_for("A scored", Duration::from_secs(30), |s| {
        s.contains("9 tokens")
    });
    t.keys(&["C-p", "C-u"]);
    t.literal(corrupt);
    t.wait_for("B scored", Duration::from_secs(30), |s| {
        s.contains("decides at")
    });
    t.keys(&["C-y"]);
    t.wait_for("the trace under way", Duration::from_secs(60), |s| {
        s.contains("tracing ") && s.contains("/270")
    });
    // Typing in B stops the trace; back to the same text, it starts over and completes.
    t.literal("x");
    t.keys(&["BSpace"]);
    let total = format!("all {} patched runs", n_layer * n);
    let screen = t.wait_for("the whole grid", Duration::from_secs(120), |s| {
        s.contains(&total)
    });
    let p_of = |c: &serde_json::Value| c["p"].as_f64().unwrap();
    let first = cell(0, n - 1);
    assert!(
        screen.contains(&format!("layer 0 at {} ␣of, patched:", n - 1)),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("p {:.4} · restored", p_of(first))),
        "{screen}"
    );
    assert!(
        screen.contains("osse     *"),
        "the differing tokens are marked:\n{screen}"
    );
    let downs: Vec<&str> = vec!["M-Down"; n_layer - 1];
    t.keys(&downs);
    let last = cell(n_layer - 1, n - 1);
    assert_eq!(last["restored"].as_f64(), Some(1.0));
    let (head, value) = (
        format!("layer {} at {} ␣of, patched:", n_layer - 1, n - 1),
        format!("p {:.4} · restored 1.00", p_of(last)),
    );
    t.wait_for("the last layer's cell", Duration::from_secs(10), |s| {
        s.contains(&head) && s.contains(&value)
    });
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}

/// The text of the right-hand panel (the corpus report), its wrapped lines joined.
fn side_panel(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('│').collect();
            (cells.len() >= 4).then(|| cells[cells.len() - 2].trim().to_owned())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `perplexity -m BASE --vs MODEL --worst N --format json` writes a report; the explorer opens
/// it (`--report`) at its first entry: the excerpt in the line, its token selected, the
/// corpus's figures from the report and the excerpt's own figures, which are `score --vs`'s
/// for that excerpt; Alt-↓ opens the next entry.
#[test]
fn a_corpus_report_opens_each_position_in_both_models() {
    use logitscope::analysis::worst::Report;
    let dir = tempfile::tempdir().unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(
        &corpus,
        readme.replace("<|", "< |").replace("<bos>", "< bos>"),
    )
    .unwrap();
    let base = common::model_path();
    let measured = common::models::quant("q4_k_m");
    let (b, m) = (base.to_str().unwrap(), measured.to_str().unwrap());
    let out = common::run(
        &[
            "perplexity",
            "-m",
            b,
            "--vs",
            m,
            "-f",
            corpus.to_str().unwrap(),
            "-c",
            "128",
            "--chunks",
            "2",
            "--worst",
            "3",
            "--format",
            "json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8(out.stdout).unwrap();
    let path = dir.path().join("report.json");
    std::fs::write(&path, &json).unwrap();
    let report = Report::parse(&json, "report.json").unwrap();
    assert_eq!(report.entries.len(), 6, "3 by KLD, 3 by drop in p");

    let t = Tmux::start(
        "report",
        &format!("-m {b} --vs {m} --report {}", path.display()),
        200,
        40,
    );
    let (_, first) = &report.entries[0];
    let screen = t.wait_for("the first entry scored", Duration::from_secs(60), |s| {
        side_panel(s).contains(" nats · a shorter context")
    });
    let panel = side_panel(&screen);
    assert!(
        screen.contains("corpus report 1/6: largest KL divergence"),
        "{screen}"
    );
    let corpus_line = format!(
        "corpus chunk {} pos {} ({} tokens before): p {:.4}, base {:.4}, KLD {:.4} nats",
        first.chunk,
        first.pos,
        first.pos + 1,
        first.p,
        first.p_base.unwrap(),
        first.kld.unwrap()
    );
    assert!(panel.contains(&corpus_line), "{corpus_line}\n{panel}");

    // The excerpt's figures are score --vs's at the token's place in the excerpt.
    let (excerpt, at) = first.excerpt();
    let scored = common::run(&["score", "-m", b, "--vs", m, &excerpt], None);
    assert!(scored.status.success());
    let line: serde_json::Value = serde_json::from_slice(&scored.stdout).unwrap();
    let mut offset = 0;
    let mut found = None;
    for (j, tok) in line["tokens"].as_array().unwrap().iter().enumerate() {
        let len = if tok["special"].as_bool().unwrap() {
            0
        } else {
            tok["bytes"].as_array().unwrap().len()
        };
        if offset <= at.start && at.start < offset + len {
            found = Some((j, tok.clone()));
            break;
        }
        offset += len;
    }
    let (j, tok) = found.expect("a token at the place");
    let c = &tok["compare"];
    let here = format!(
        "here (this excerpt, {j} tokens before): p {:.4}, base {:.4}, KLD {:.4} nats",
        c["logprob_b"].as_f64().unwrap().exp(),
        tok["prob"].as_f64().unwrap(),
        c["kl_bits"].as_f64().unwrap() * std::f64::consts::LN_2
    );
    assert!(panel.contains(&here), "{here}\n{panel}");
    // The line holds the excerpt and the token is selected (the distribution panel's title).
    assert!(screen.contains(&format!("token {j} ")), "{screen}");

    t.keys(&["M-Down"]);
    t.wait_for("the second entry", Duration::from_secs(60), |s| {
        s.contains("corpus report 2/6") && side_panel(s).contains(" nats · a shorter context")
    });
    t.keys(&["Escape"]);
    assert_eq!(t.exit_status(), 0);
    t.assert_restored();
}
