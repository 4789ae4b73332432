"""Throughput and memory of `seqchat predict` on a FASTA file: sequences/s, and peak memory that stays flat.

Writes a FASTA of --n DNA sequences (GUE promoter test sequences, cycled), then runs the same code as
`seqchat predict` twice in one process: on the first fifth of the file, then on all of it. The peak
resident memory after the small run and after the 5x larger run are printed side by side: equal figures
mean memory does not grow with the number of records.

    python benchmarks/predict_throughput.py [--n 2000] [--task promoter_300_all] [--model DIR | --config YAML]
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_data import dna_sequences  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="records in the large run (the small run has n/5)")
    p.add_argument("--task", default="promoter_300_all")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--model", help="model folder (default: the shipped model, else the untrained default config)")
    p.add_argument("--config", help="untrained architecture from this YAML")
    args = p.parse_args()

    from seqchat.serving.api import SeqChat
    from seqchat.serving.predict import predict_fasta

    bot = SeqChat.load(model=args.model, config=args.config)
    seqs, source = dna_sequences(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp, "small.fa"), Path(tmp, "large.fa")
        small.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs[: args.n // 5])))
        large.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
        results = []
        for fa in (small, large):
            t0 = time.perf_counter()
            s = predict_fasta(bot.model, args.task, fa, Path(tmp, fa.stem + ".csv"), batch_size=args.batch_size,
                              progress=False)  # fmt: skip
            results.append((s.predicted, time.perf_counter() - t0, _peak_rss_mib()))
    print(f"# predict throughput: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, task {args.task}, batch {args.batch_size}, "
          f"model {args.model or args.config or 'default'}")  # fmt: skip
    print(f"# sequences: {source}")
    for (n, sec, rss), name in zip(results, ("small", "large"), strict=True):
        print(f"{name:6s} {n:7d} sequences  {sec:8.1f} s  {n / sec:8.2f} sequences/s  peak RSS {rss:8.0f} MiB")
    growth = results[1][2] - results[0][2]
    print(f"peak RSS growth from {results[0][0]} to {results[1][0]} records: {growth:+.0f} MiB")


if __name__ == "__main__":
    main()
