"""Throughput of `seqchat predict` in score mode: the reference and the one-pass candidate scoring, side by side.

Takes --n test examples of a class task (promoter_300_all: 10 confidence phrasings scored per sequence)
and answers them with `predict_task(mode="score")` (the code behind `seqchat predict`), alternately by the
reference path (`model.fast_scoring = False`: the prompt's KV cache copied per candidate) and by the
one-pass path (shared-prefix KV cache, candidate token trie), --repeats times each, with the encoder and
prefix caches cleared before every run so both pay encoding. Prints each path's sequences/s (median of
the runs), the largest difference between their class probabilities, and the speed-up on the last line.

    python benchmarks/predict_throughput.py [--n 64] [--task promoter_300_all] [--threads 1] [--model DIR]

--memory instead writes a FASTA of --n DNA sequences (GUE promoter test sequences, cycled; default 2000)
and runs `seqchat predict` on its first fifth, then on all of it: equal peak resident memory after the
small and the 5x larger run means memory does not grow with the number of records.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_data import dna_sequences  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed_predictions(model, task: str, seqs: list[str], metas: list, batch_size: int, fast: bool):
    """One cold run of score-mode prediction: (wall seconds, CPU seconds, (n, n_classes) probabilities)."""
    from seqchat.tasks.predict import class_keys, predict_task

    model.fast_scoring = fast
    model.clear_caches()
    t0, c0 = time.perf_counter(), time.process_time()
    preds = predict_task(model, task, seqs, metas=metas, mode="score", batch_size=batch_size)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, np.array([[p.probabilities[k] for k in class_keys(task)] for p in preds])


def compare_paths(args: argparse.Namespace, model) -> None:
    """Time the reference and the one-pass scoring path on the same examples and print the figures."""
    from seqchat.data.sampling import sample_examples

    examples = sample_examples(args.task, "test", args.n or 64, args.seed)
    seqs, metas = [e.residues for e in examples], [e.meta for e in examples]
    times: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    probs: dict[bool, np.ndarray] = {}
    for _ in range(args.repeats):
        for fast in (False, True):  # alternated, so that load changes on the shared machine hit both alike
            wall, used, probs[fast] = _timed_predictions(model, args.task, seqs, metas, args.batch_size, fast)
            times[fast].append(wall)
            cpu[fast].append(used)
    model.fast_scoring = True
    print(f"# predict throughput (score mode): {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f} at the end, "
          f"task {args.task}, {len(seqs)} test examples (seed {args.seed}), batch {args.batch_size}, "
          f"model {args.model or args.config or 'shipped'}, median of {args.repeats} cold runs")  # fmt: skip
    rate = {}
    for fast, name in ((False, "reference"), (True, "one-pass")):
        rate[fast] = len(seqs) / float(np.median(times[fast]))
        runs = " ".join(f"{t:.1f}" for t in times[fast])
        # CPU time counts only this process: on a shared machine it shows the work, the wall time the wait too
        per_seq = float(np.median(cpu[fast])) / len(seqs)
        print(f"{name:9s} {rate[fast]:8.2f} sequences/s  (runs: {runs} s; CPU {per_seq:.3f} s per sequence)")
    print(f"max |difference| in class probabilities: {np.abs(probs[True] - probs[False]).max():.2e}")
    print(f"speed-up one-pass / reference: {rate[True] / rate[False]:.2f}x")


def memory_check(args: argparse.Namespace, model) -> None:
    """Run `seqchat predict` on a small and a 5x larger FASTA file and print sequences/s and peak memory."""
    from seqchat.serving.predict import predict_fasta

    n = args.n or 2000
    seqs, source = dna_sequences(n)
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp, "small.fa"), Path(tmp, "large.fa")
        small.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs[: n // 5])))
        large.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
        results = []
        for fa in (small, large):
            t0 = time.perf_counter()
            s = predict_fasta(model, args.task, fa, Path(tmp, fa.stem + ".csv"), batch_size=args.batch_size,
                              progress=False)  # fmt: skip
            results.append((s.predicted, time.perf_counter() - t0, _peak_rss_mib()))
    print(f"# predict throughput: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, task {args.task}, batch {args.batch_size}, "
          f"model {args.model or args.config or 'default'}")  # fmt: skip
    print(f"# sequences: {source}")
    for (k, sec, rss), name in zip(results, ("small", "large"), strict=True):
        print(f"{name:6s} {k:7d} sequences  {sec:8.1f} s  {k / sec:8.2f} sequences/s  peak RSS {rss:8.0f} MiB")
    growth = results[1][2] - results[0][2]
    print(f"peak RSS growth from {results[0][0]} to {results[1][0]} records: {growth:+.0f} MiB")


def main() -> None:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--n", type=int, help="examples (default 64); with --memory, records in the large run (default 2000)"
    )
    p.add_argument("--task", default="promoter_300_all")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3, help="cold runs of each path (the median is reported)")
    p.add_argument("--seed", type=int, default=0, help="which test examples (stratified sample)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--memory", action="store_true", help="the FASTA memory check instead of the path comparison")
    p.add_argument("--model", help="model folder (default: the shipped model, else the untrained default config)")
    p.add_argument("--config", help="untrained architecture from this YAML")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from seqchat.serving.api import SeqChat

    model = SeqChat.load(model=args.model, config=args.config).model
    (memory_check if args.memory else compare_paths)(args, model)


if __name__ == "__main__":
    main()
