fn main() {
    let n = 262_144;
    let mut x = 12345u64;
    let row: Vec<f32> = (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 20.0 - 12.0
        })
        .collect();
    let reps = 200;
    let t = std::time::Instant::now();
    for _ in 0..reps {
        std::hint::black_box(logitscope::stats::top_k(std::hint::black_box(&row), 10));
    }
    println!(
        "top_k {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    let t = std::time::Instant::now();
    for _ in 0..reps {
        std::hint::black_box(
            logitscope::stats::logprobs_of(std::hint::black_box(&row), 1.0, &[3]).ok(),
        );
    }
    println!(
        "max+exp {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    let t = std::time::Instant::now();
    for _ in 0..reps {
        std::hint::black_box(
            logitscope::stats::summarize_row(std::hint::black_box(&row), 1.0, 10, Some(77)).ok(),
        );
    }
    println!(
        "summary {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
}
