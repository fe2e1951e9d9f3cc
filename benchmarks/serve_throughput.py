"""minigpt serve: 8 concurrent streaming clients vs the same 8 requests one after another.

    PYTHONPATH=src python benchmarks/serve_throughput.py [--models char,gpt2] [--rounds 3]

For each model shape (random weights: speed does not depend on what a model learned) it
starts a real server in a child process (``minigpt.serve``, uvicorn, on a free loopback
port) and, side by side in alternating rounds:

- sequential: 8 streaming requests, each sent when the previous one has finished;
- concurrent: the same 8 requests at once, from 8 threads (continuous batching);
- single stream: one request, decode tokens/s measured by the client (first token to last),
  against ``minigpt sample``'s code path (``stream_text`` with the KV cache) run in this
  process on an identical model with as many threads as the server.

Aggregate tokens/s = all tokens / wall time of the 8 requests. TTFT = request sent to first
token; per-token latency = mean gap between a stream's tokens. Clients read the raw
server-sent events (http.client), so the load generator costs little CPU. Medians over the
rounds are printed as a markdown table for BENCHMARKS.md. The machine may be shared: only the
ratios measured in the same run mean much.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch

SHAPES = {
    # the shakespeare-char preset's model (6 layers, 8 heads, 256 wide, block 128, 65 chars)
    "char": dict(n_layer=6, n_head=8, n_embd=256, block_size=128, vocab_size=65, tokens=100),
    # GPT-2 small's shape (124M parameters, block 1024, vocab 50257)
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257, tokens=32),
}
CLIENTS = 8


def build(shape: str):
    """The same random model and tokenizer in the server and in this process."""
    from minigpt.config import ModelConfig
    from minigpt.data.tokenizer import CharTokenizer
    from minigpt.model import GPT

    spec = {k: v for k, v in SHAPES[shape].items() if k != "tokens"}
    torch.manual_seed(0)
    model = GPT(ModelConfig(dropout=0.0, **spec)).eval()
    chars = "".join(chr(0x100 + i) for i in range(spec["vocab_size"]))
    tokenizer = CharTokenizer.train([chars])
    assert tokenizer.vocab_size == spec["vocab_size"]
    return model, tokenizer


def child(shape: str, port: int, threads: int) -> None:
    """Serve ``shape`` on ``port`` until killed (run in a child process)."""
    import time as _time

    import uvicorn

    from minigpt.inference.batching import BatchEngine
    from minigpt.serve.app import create_app
    from minigpt.serve.registry import ServedModel
    from minigpt.serve.settings import ServeConfig

    torch.set_num_threads(threads)
    model, tokenizer = build(shape)
    config = ServeConfig(port=port, runs=None, max_tokens=100_000)
    engine = BatchEngine(model, tokenizer, max_batch=CLIENTS)
    served = {shape: ServedModel(shape, "random", model, tokenizer, engine, int(_time.time()))}
    uvicorn.run(create_app(config, served), host="127.0.0.1", port=port, log_level="warning")


def stream(port: int, body: dict) -> tuple[float, list[float]]:
    """(time the request was sent, arrival time of each token) of one streaming request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    sent = time.perf_counter()
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    arrivals = []
    for line in response:
        if line.startswith(b"data: {"):
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["text"]:  # one character per token
                arrivals.append(time.perf_counter())
    conn.close()
    return sent, arrivals


def request(shape: str, i: int, tokens: int) -> dict:
    prompt = "".join(chr(0x100 + (17 * i + 5 * j) % 60) for j in range(8))
    return {
        "model": shape,
        "prompt": prompt,
        "max_tokens": tokens,
        "temperature": 0.8,
        "top_k": 200,
        "seed": i,
        "stream": True,
        "logprobs": 0,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the server process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_batch(port: int, bodies: list[dict], concurrent: bool, pid: int) -> dict:
    results: list = [None] * len(bodies)
    cpu = cpu_seconds(pid)

    def one(i: int) -> None:
        results[i] = stream(port, bodies[i])

    start = time.perf_counter()
    if concurrent:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i in range(len(bodies)):
            one(i)
    wall = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu
    tokens = sum(len(a) for _, a in results)
    ttft = [a[0] - s for s, a in results]
    gaps = [(a[-1] - a[0]) / (len(a) - 1) for _, a in results]
    return {
        "tok_s": tokens / wall,
        "tok_cpu_s": tokens / cpu,
        "ttft": statistics.median(ttft),
        "per_token": statistics.median(gaps),
    }


def sample_speed(model, tokenizer, tokens: int) -> float:
    """Decode tokens/s of ``minigpt sample``'s path (first piece to last), this process."""
    from minigpt.inference.generate import stream_text

    times = []
    prompt = request("x", 0, tokens)["prompt"]
    for _ in stream_text(model, tokenizer, prompt, max_new_tokens=tokens, temperature=0.8, seed=0):
        times.append(time.perf_counter())
    return (len(times) - 1) / (times[-1] - times[0])


def wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server died"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def bench(shape: str, rounds: int, threads: int) -> dict:
    from tests.serve_helpers import free_port

    port = free_port()
    cmd = [
        sys.executable,
        __file__,
        "--child",
        shape,
        "--port",
        str(port),
        "--threads",
        str(threads),
    ]
    proc = subprocess.Popen(cmd)
    try:
        wait_up(port, proc)
        tokens = SHAPES[shape]["tokens"]
        bodies = [request(shape, i, tokens) for i in range(CLIENTS)]
        model, tokenizer = build(shape)
        run_batch(port, bodies[:2], concurrent=True, pid=proc.pid)  # warm-up
        rows: dict[str, list] = {"seq": [], "conc": [], "single": [], "sample": []}
        for r in range(rounds):
            rows["seq"].append(run_batch(port, bodies, concurrent=False, pid=proc.pid))
            rows["conc"].append(run_batch(port, bodies, concurrent=True, pid=proc.pid))
            rows["single"].append(run_batch(port, bodies[:1], concurrent=False, pid=proc.pid))
            rows["sample"].append(sample_speed(model, tokenizer, tokens))
            print(
                f"{shape} round {r + 1}: seq {rows['seq'][-1]['tok_s']:.1f} tok/s, "
                f"8 concurrent {rows['conc'][-1]['tok_s']:.1f} tok/s, single "
                f"{1 / rows['single'][-1]['per_token']:.1f} vs sample {rows['sample'][-1]:.1f} tok/s",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait()

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in rows[name])

    return {
        "ratio": statistics.median(
            c["tok_s"] / q["tok_s"] for c, q in zip(rows["conc"], rows["seq"], strict=True)
        ),
        "cpu_seq": med("seq", "tok_cpu_s"),
        "cpu_conc": med("conc", "tok_cpu_s"),
        "seq": med("seq", "tok_s"),
        "conc": med("conc", "tok_s"),
        "ttft1": med("seq", "ttft"),
        "ttft8": med("conc", "ttft"),
        "tpt1": med("seq", "per_token"),
        "tpt8": med("conc", "per_token"),
        "single": statistics.median(1 / x["per_token"] for x in rows["single"]),
        "single_ratio": statistics.median(
            1 / x["per_token"] / y for x, y in zip(rows["single"], rows["sample"], strict=True)
        ),
        "sample": statistics.median(rows["sample"]),
        "tokens": tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="char,gpt2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of the server and of sample (1)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.port, args.threads)
    torch.set_num_threads(args.threads)  # as many as the server gets
    load = os.getloadavg()[0]
    results = {shape: bench(shape, args.rounds, args.threads) for shape in args.models.split(",")}
    print(
        f"\nload average at start: {load:.1f}, at end: {os.getloadavg()[0]:.1f}, on "
        f"{os.cpu_count()} cores; torch threads {args.threads}; {args.rounds} rounds, medians\n"
    )
    print(
        "| model | tokens/request | 8 sequential tok/s | 8 concurrent tok/s | ratio (median of "
        "rounds) | tokens per server CPU-second, seq / conc | TTFT 1 / 8 clients | per-token "
        "1 / 8 clients | single stream vs `minigpt sample` tok/s (median ratio of rounds) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for shape, r in results.items():
        print(
            f"| {shape} | {r['tokens']} | {r['seq']:.1f} | {r['conc']:.1f} | {r['ratio']:.2f}x | "
            f"{r['cpu_seq']:.1f} / {r['cpu_conc']:.1f} ({r['cpu_conc'] / r['cpu_seq']:.2f}x) | "
            f"{r['ttft1'] * 1e3:.0f} / {r['ttft8'] * 1e3:.0f} ms | "
            f"{r['tpt1'] * 1e3:.1f} / {r['tpt8'] * 1e3:.1f} ms | "
            f"{r['single']:.1f} vs {r['sample']:.1f} ({r['single_ratio']:.2f}x) |"
        )


if __name__ == "__main__":
    main()
