//! `cargo bench`: the statistics of one logit row (the part of the analysis that is ours).
//! The whole-program figures against llama.cpp's decode come from `logitscope bench`.
use criterion::{criterion_group, criterion_main, Criterion};

fn stats(c: &mut Criterion) {
    for n in [49_152usize, 262_144] {
        let r = logitscope::analysis::stats::synthetic_row(n, n as u64);
        c.bench_function(&format!("summarize_row/{n}"), |b| {
            b.iter(|| {
                logitscope::analysis::stats::summarize_row(
                    std::hint::black_box(&r),
                    1.0,
                    10,
                    Some(7),
                )
            })
        });
        c.bench_function(&format!("logprobs_of/{n}"), |b| {
            b.iter(|| logitscope::analysis::stats::logprobs_of(std::hint::black_box(&r), 1.0, &[7]))
        });
    }
}

criterion_group!(benches, stats);
criterion_main!(benches);
