#!/usr/bin/env python3
"""Corpus mode: `logitscope perplexity` against llama.cpp's `llama-perplexity`, side by side
on the same file, chunk length, chunks and threads (docs/benchmarks.md, "Corpus mode").

    python3 benches/corpus.py LLAMA_PERPLEXITY BASE.gguf QUANT.gguf TEXT [ROUNDS]

Interleaved rounds (ours, theirs, ours, theirs…) of three measurements, medians of wall
seconds and of peak resident memory reported:
  ppl     perplexity of BASE over TEXT (-c 512 --chunks 8 -t 2);
  write   the same, writing the base file (--kl-divergence-base);
  kld     QUANT against that base file (--kl-divergence), each program reading its own file.
Then memory as the file grows: `perplexity` over TEXT repeated 1x, 2x and 4x, all chunks.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = __file__.rsplit("/benches/", 1)[0]
BIN = f"{ROOT}/target/release/logitscope"


def timed(cmd):
    """(wall seconds, peak RSS MiB, stdout) of one run, through /usr/bin/time."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M"] + cmd,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {out.stderr[-2000:]}")
    m = re.findall(r"TIME ([0-9.]+) ([0-9]+)", out.stderr)[-1]
    return float(m[0]), int(m[1]) / 1024, out.stdout + out.stderr


def main():
    llama, base, quant, text = sys.argv[1:5]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    tmp = tempfile.mkdtemp()
    common = ["-c", "512", "--chunks", "8", "-t", "2"]
    runs = {
        "ppl": (
            [BIN, "perplexity", "-m", base, "-f", text] + common,
            [llama, "-m", base, "-f", text] + common,
        ),
        "write": (
            [BIN, "perplexity", "-m", base, "-f", text, "--kl-divergence-base", f"{tmp}/ours.kld"] + common,
            [llama, "-m", base, "-f", text, "--kl-divergence-base", f"{tmp}/theirs.kld"] + common,
        ),
        "kld": (
            [BIN, "perplexity", "-m", quant, "--kl-divergence-base", f"{tmp}/ours.kld", "--kl-divergence", "-t", "2"],
            [llama, "-m", quant, "--kl-divergence-base", f"{tmp}/theirs.kld", "--kl-divergence", "-c", "512", "-t", "2"],
        ),
    }
    results = {k: ([], []) for k in runs}
    for r in range(rounds):
        for name, (ours, theirs) in runs.items():
            for side, cmd in ((0, ours), (1, theirs)):
                secs, mib, _ = timed(cmd)
                results[name][side].append((secs, mib))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    print(f"{'':6} {'logitscope s':>13} {'llama-perplexity s':>19} {'ratio':>6} {'ours MiB':>9} {'theirs MiB':>11}")
    for name, (ours, theirs) in results.items():
        o = statistics.median(s for s, _ in ours)
        t = statistics.median(s for s, _ in theirs)
        om = statistics.median(m for _, m in ours)
        tm = statistics.median(m for _, m in theirs)
        print(f"{name:6} {o:13.2f} {t:19.2f} {o / t:6.2f} {om:9.0f} {tm:11.0f}")
    body = open(text, encoding="utf-8").read()
    for times in (1, 2, 4):
        path = f"{tmp}/x{times}.txt"
        with open(path, "w", encoding="utf-8") as f:
            f.write(body * times)
        secs, mib, out = timed([BIN, "perplexity", "-m", base, "-f", path, "-c", "512", "-t", "2"])
        chunks = re.findall(r"\[(\d+)\]", out)
        print(f"file x{times}: {chunks[-1]} chunks, {secs:.1f} s, peak {mib:.0f} MiB")
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
