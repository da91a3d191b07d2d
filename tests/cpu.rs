//! A CPU without the instructions this build's llama.cpp kernels use gets a clear error, not
//! an illegal instruction: the real binary, run under QEMU's user-mode emulator as a CPU of
//! 2011 (Sandy Bridge: AVX, no AVX2/FMA/F16C/BMI2) and, as the control, of 2013 (Haswell,
//! which has them all). `./dev test` installs QEMU.
#![cfg(target_arch = "x86_64")]
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

fn emulated(cpu: &str, args: &[&str]) -> Output {
    Command::new("qemu-x86_64")
        .args(["-cpu", cpu, common::bin()])
        .args(args)
        .output()
        .expect("qemu-x86_64 (Debian's qemu-user, installed by ./dev test)")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("qemu-x86_64: warning"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_cpu_without_avx2_is_told_so_and_how_to_build_for_it() {
    let model = common::model_arg();
    for args in [
        vec!["score", "-m", &model, "The cat sat."],
        vec!["fill", "-m", &model, "The ____ sat on the mat."],
    ] {
        let out = emulated("SandyBridge", &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("this CPU lacks AVX2, FMA, F16C, BMI2, which this build of llama.cpp's CPU kernels uses"),
            "{err}"
        );
        assert!(err.contains("RUSTFLAGS=\"-C target-cpu=native\""), "{err}");
        assert!(!err.contains("Illegal instruction"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_cpu_with_them_runs_under_the_same_emulator_with_the_same_numbers() {
    let model = common::model_arg();
    let args = ["score", "-m", &model, "The cat sat on the mat."];
    let out = emulated("Haswell", &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let native = common::run(&args, None);
    assert!(native.status.success());
    assert_eq!(common::json_lines(&out), common::json_lines(&native));
}
