"""Load test of `seqchat serve`: concurrent clients against a local server for a bounded time.

Starts `seqchat serve` on 127.0.0.1 (or targets --url), runs --clients concurrent clients, each sending
requests back to back until --duration seconds have passed, then prints requests/s, p50/p95 latency,
the error count (any non-200 answer or transport error) and how many requests the server answered per
model batch. Every chat request carries its own 300-nt sequence, so the encoder cache does not help.

    python benchmarks/server_load.py [--clients 50] [--duration 30] [--endpoint chat|predict]
                                     [--model DIR | --config YAML] [--max-new-tokens 16] [--url URL]

`--scenario mixed` measures what one big prediction does to chat: first --clients chat clients alone for
--duration seconds, then the same clients while one more client sends a --predict-sequences (1,000)
sequence /v1/predict. It prints chat p50/p95 for both phases, the errors, how many of the big request's
sequences were predicted meanwhile, and, when the big request has not finished --predict-wait seconds after
the chat phase, that its client then disconnects and how fast the server drops the rest of the work.
Only 127.0.0.1 (or --url) is targeted; request counts and time are bounded by --duration and --timeout.
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
    cmd += ["--predict-chunk", str(args.predict_chunk)]
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


async def _phase(
    http: httpx.AsyncClient, args: argparse.Namespace, seqs: list[str], counter: itertools.count
) -> tuple[list[float], list[str], float]:
    """--clients clients sending back to back for --duration seconds (requests in flight then finish)."""
    latencies: list[float] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    stop_at = t0 + args.duration
    await asyncio.gather(*(
        _client(http, args, seqs, counter, stop_at, latencies, errors) for _ in range(args.clients)
    ))  # fmt: skip
    return latencies, errors, time.perf_counter() - t0


def _http(args: argparse.Namespace, url: str, extra: int = 0) -> httpx.AsyncClient:
    n = args.clients + extra
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    return httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits)


async def _run(args: argparse.Namespace, url: str, seqs: list[str]) -> tuple[list[float], list[str], float]:
    async with _http(args, url) as http:
        # one warm-up request, so start-up costs are not counted
        path, body = _body(args, seqs[-1], 0)
        (await http.post(path, json=body)).raise_for_status()
        return await _phase(http, args, seqs, itertools.count())


async def _run_mixed(args: argparse.Namespace, url: str, seqs: list[str]) -> dict:
    """Chat alone, then chat beside one big prediction; figures of both phases."""
    out: dict = {}
    async with _http(args, url) as http:
        path, body = _body(args, seqs[-1], 0)
        (await http.post(path, json=body)).raise_for_status()
        counter = itertools.count()
        out["alone"] = await _phase(http, args, seqs, counter)
        big = {"task": "promoter_300_all",
               "sequences": {f"big{i}": s for i, s in enumerate(seqs[: args.predict_sequences])}}  # fmt: skip
        before = (await http.get("/healthz")).json()
        # its own connection, so closing it is a client going away
        big_http = httpx.AsyncClient(base_url=url, timeout=args.timeout)
        t_big = time.perf_counter()
        big_task = asyncio.create_task(big_http.post("/v1/predict", json=big))
        await asyncio.sleep(1.0)  # the prediction is under way before the chat clients start
        out["beside"] = await _phase(http, args, seqs, counter)
        during = (await http.get("/healthz")).json()
        out["predicted_during"] = during["predicted"] - before["predicted"]
        done, _ = await asyncio.wait({big_task}, timeout=args.predict_wait)
        if done:
            try:
                r = big_task.result()
                out["big"] = f"finished in {time.perf_counter() - t_big:.1f} s with HTTP {r.status_code}"
                if r.status_code != 200:
                    out["beside"][1].append(f"big predict: HTTP {r.status_code}: {r.text[:200]}")
            except httpx.HTTPError as e:
                out["big"] = f"failed ({type(e).__name__})"
                out["beside"][1].append(f"big predict: {type(e).__name__}: {e}")
        else:
            big_task.cancel()
            await big_http.aclose()  # the client goes away: the server must drop the rest of the work
            t_gone = time.perf_counter()
            while (await http.get("/healthz")).json()["queued"] > 0 and time.perf_counter() - t_gone < 120:
                await asyncio.sleep(0.2)
            health = (await http.get("/healthz")).json()
            out["big"] = (f"not finished {args.predict_wait:.0f} s after the chat phase; its client disconnected, "
                          f"and the server dropped the rest in {time.perf_counter() - t_gone:.1f} s "
                          f"(cancelled {health['cancelled']}, queued {health['queued']})")  # fmt: skip
        await big_http.aclose()
    return out


def _quantiles(latencies: list[float]) -> list[float]:
    return statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99


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
    p.add_argument("--scenario", choices=["single", "mixed"], default="single",
                   help="mixed: chat alone, then chat beside one --predict-sequences prediction")  # fmt: skip
    p.add_argument("--predict-sequences", type=int, default=1000, help="size of the big prediction (mixed)")
    p.add_argument("--predict-chunk", type=int, default=8, help="the server's --predict-chunk")
    p.add_argument("--predict-wait", type=float, default=0.0,
                   help="seconds to wait for the big prediction after the chat phase before disconnecting")
    args = p.parse_args()
    if args.scenario == "mixed":
        args.endpoint = "chat"

    seqs, source = dna_sequences(5000)
    proc = None
    url = args.url
    if url is None:
        proc, url = _start_server(args)
    try:
        if args.scenario == "mixed":
            mixed = asyncio.run(_run_mixed(args, url, seqs))
            latencies, errors, elapsed = mixed["beside"]
        else:
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
    q = _quantiles(latencies)
    print(f"# server load: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"endpoint {args.endpoint}, {args.clients} clients, {args.duration:.0f} s, model "
          f"{args.model or args.config or 'default'}, max_new_tokens {args.max_new_tokens}")  # fmt: skip
    print(f"# sequences: {source}")
    if args.scenario == "mixed":
        alone, alone_errors, alone_s = mixed["alone"]
        qa = _quantiles(alone)
        print(f"# mixed: chat alone, then chat beside one {args.predict_sequences}-sequence predict "
              f"(predict chunk {args.predict_chunk})")  # fmt: skip
        print(f"chat alone    {len(alone)} ok in {alone_s:.1f} s, p50 {qa[49]:.2f} s, p95 {qa[94]:.2f} s, "
              f"{len(alone_errors)} errors")  # fmt: skip
        print(f"chat beside   {n} ok in {elapsed:.1f} s, p50 {q[49]:.2f} s, p95 {q[94]:.2f} s, "
              f"{len(errors)} errors")  # fmt: skip
        print(f"big predict   {mixed['predicted_during']} sequences predicted during the chat phase; {mixed['big']}")
        errors = alone_errors + errors
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
