#!/usr/bin/env python3
"""Greedy generation: `logitscope serve` against a plain llama-cpp-2 greedy loop
(examples/greedy_floor.rs), and 8 clients generating at once (docs/benchmarks.md).

    cargo build --release --example greedy_floor
    python3 benches/generation.py MODEL [ROUNDS]

Interleaved rounds (floor, serve, floor, serve…), medians reported: tokens per second of one
greedy generation of 128 tokens from the same prompt, two threads each; then 8 concurrent
clients, each asking for 128 tokens from its own prompt, total tokens per second.
"""

import json
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = __file__.rsplit("/benches/", 1)[0]
BIN = f"{ROOT}/target/release/logitscope"
FLOOR = f"{ROOT}/target/release/examples/greedy_floor"
PROMPT = "The history of the city begins in the twelfth century, when"
N = 128


def post(base, body):
    req = urllib.request.Request(
        f"{base}/v1/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def floor(model):
    out = subprocess.run(
        [FLOOR, model, "2", str(N), PROMPT], capture_output=True, text=True, check=True
    ).stdout
    return float(re.search(r"([\d.]+) tokens/s", out).group(1))


def serve(base, prompt=PROMPT):
    t0 = time.perf_counter()
    answer = post(base, {"prompt": prompt, "max_tokens": N, "temperature": 0})
    secs = time.perf_counter() - t0
    return answer["usage"]["completion_tokens"], secs


def main():
    model = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    server = subprocess.Popen(
        [BIN, "-m", model, "-t", "2", "-c", "2048", "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    base = None
    for line in server.stderr:
        m = re.search(r"(http://\S+)", line)
        if m:
            base = m.group(1)
            break
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    try:
        # The prompt's evaluation is cached after the first request: warm both up.
        serve(base)
        floor(model)
        floors, serves = [], []
        for _ in range(rounds):
            floors.append(floor(model))
            n, secs = serve(base)
            # The server's time includes the prompt's evaluation (cached: its last token) and
            # the HTTP round trip; the floor's excludes its prompt decode.
            serves.append(n / secs)
            print(f"floor {floors[-1]:.1f} tokens/s, serve {serves[-1]:.1f} tokens/s ({n} tokens)")
        f, s = statistics.median(floors), statistics.median(serves)
        print(f"median: floor {f:.1f}, serve {s:.1f} tokens/s: {s / f:.3f} x the floor")
        prompts = [f"{PROMPT} ({i + 1})" for i in range(8)]
        results = [None] * 8

        def client(i):
            results[i] = serve(base, prompts[i])

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        total = sum(n for n, _ in results)
        print(
            f"8 concurrent clients: {total} tokens in {wall:.2f} s: {total / wall:.1f} tokens/s in total"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
