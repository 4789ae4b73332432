"""Load test of `seqchat serve`: concurrent clients against a local server for a bounded time.

Starts `seqchat serve` on 127.0.0.1 (or targets --url), runs --clients concurrent clients, each sending
requests back to back until --duration seconds have passed, then prints requests/s, p50/p95 latency,
the error count (any non-200 answer or transport error) and how many requests the server answered per
model batch. Every chat request carries its own 300-nt sequence, so the encoder cache does not help.

    python benchmarks/server_load.py [--clients 50] [--duration 30] [--endpoint chat|predict]
                                     [--model DIR | --config YAML] [--max-new-tokens 16] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_data import dna_sequences  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "seqchat.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--max-batch", str(args.max_batch)]  # fmt: skip
    cmd += ["--model", args.model] if args.model else (["--config", args.config] if args.config else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not come up within 300 s")


def _body(args: argparse.Namespace, seq: str, i: int) -> tuple[str, dict]:
    if args.endpoint == "predict":
        return "/v1/predict", {"task": "promoter_300_all", "sequences": {f"s{i}": seq}}
    question = ["Is there a promoter in @s?", "What can you tell me about @s?", "Does @s contain a TATA box?"][i % 3]
    return "/v1/chat", {
        "messages": [{"role": "user", "content": question}],
        "sequences": [{"name": "s", "sequence": seq}],
        "max_new_tokens": args.max_new_tokens,
    }


async def _client(
    http: httpx.AsyncClient, args: argparse.Namespace, seqs: list[str], counter: itertools.count, stop_at: float,
    latencies: list[float], errors: list[str],
) -> None:  # fmt: skip
    while time.perf_counter() < stop_at:
        i = next(counter)
        path, body = _body(args, seqs[i % len(seqs)], i)
        t0 = time.perf_counter()
        try:
            r = await http.post(path, json=body)
            if r.status_code != 200:
                errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                continue
        except httpx.HTTPError as e:
            errors.append(f"{type(e).__name__}: {e}")
            continue
        latencies.append(time.perf_counter() - t0)


async def _run(args: argparse.Namespace, url: str, seqs: list[str]) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as http:
        # one warm-up request, so start-up costs are not counted
        path, body = _body(args, seqs[-1], 0)
        (await http.post(path, json=body)).raise_for_status()
        counter = itertools.count()
        t0 = time.perf_counter()
        stop_at = t0 + args.duration
        await asyncio.gather(*(
            _client(http, args, seqs, counter, stop_at, latencies, errors) for _ in range(args.clients)
        ))  # fmt: skip
        elapsed = time.perf_counter() - t0
    return latencies, errors, elapsed


def main() -> None:
    """Run the load test and print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=float, default=30.0, help="seconds during which clients send requests")
    p.add_argument("--endpoint", choices=["chat", "predict"], default="chat")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--max-batch", type=int, default=32, help="the server's --max-batch")
    p.add_argument("--timeout", type=float, default=300.0, help="per-request client timeout (s)")
    p.add_argument("--model", help="model folder (default: the shipped model, else the untrained default config)")
    p.add_argument("--config", help="untrained architecture from this YAML")
    p.add_argument("--url", help="an already running server instead of starting one")
    args = p.parse_args()

    seqs, source = dna_sequences(5000)
    proc = None
    url = args.url
    if url is None:
        proc, url = _start_server(args)
    try:
        latencies, errors, elapsed = asyncio.run(_run(args, url, seqs))
        health = httpx.get(url + "/healthz", timeout=10).json()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    n = len(latencies)
    q = statistics.quantiles(latencies, n=100) if n >= 2 else [float("nan")] * 99
    print(f"# server load: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"endpoint {args.endpoint}, {args.clients} clients, {args.duration:.0f} s, model "
          f"{args.model or args.config or 'default'}, max_new_tokens {args.max_new_tokens}")  # fmt: skip
    print(f"# sequences: {source}")
    print(f"requests      {n} ok in {elapsed:.1f} s")
    print(f"requests/s    {n / elapsed:.2f}")
    print(f"latency p50   {q[49]:.2f} s")
    print(f"latency p95   {q[94]:.2f} s")
    print(f"errors        {len(errors)}")
    if health.get("batches"):
        print(f"per batch     {health['answered'] / health['batches']:.1f} requests on average (server count)")
    for e in errors[:5]:
        print(f"  error: {e}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
