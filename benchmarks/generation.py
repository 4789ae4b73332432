"""Generation speed of the default architecture on this machine: KV cache vs full recomputation.

ChatNT's public code recomputes the whole window at every decoding step; seqchat keeps a KV cache.
Prints tokens/s (median of --repeats runs) at batch 1 and batch 8 for both, then the speed-up ratio.

    python benchmarks/generation.py [--new-tokens 32] [--repeats 3] [--model DIR | --config YAML]
"""

from __future__ import annotations

import argparse
import gzip
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dna" / "gue" / "prom" / "prom_300_tata" / "test.csv.gz"


def _sequences(n: int) -> list[str]:
    """Real 300-bp promoter-task sequences (GUE prom_300_tata test split)."""
    with gzip.open(DATA, "rt") as fh:
        next(fh)
        return [line.split(",")[0] for _, line in zip(range(n), fh, strict=False)]


def main() -> None:
    """Run the benchmark and print a table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model")
    p.add_argument("--config", default=str(ROOT / "src/seqchat/configs/model/seqchat-small.yaml"))
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from seqchat.modeling.config import SeqChatConfig
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    if args.model:
        model = SeqChatForConditionalGeneration.from_pretrained(args.model).eval()
    else:
        model = SeqChatForConditionalGeneration(SeqChatConfig.from_file(args.config)).eval()
    seqs = _sequences(8)
    questions = [f"Is there a promoter in @s? Answer in detail, case {i}." for i in range(8)]

    print(f"# generation benchmark: {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"torch {torch.__version__}, {args.new_tokens} new tokens, median of {args.repeats}")  # fmt: skip
    print(f"# model: {args.model or args.config}; prompt: 1 question + one 300-nt GUE sequence (K placeholders)")
    results: dict[tuple[int, bool], float] = {}
    for bs in (1, 8):
        batch = model.processor(
            [[{"role": "user", "content": q}] for q in questions[:bs]], [{"s": s} for s in seqs[:bs]],
            add_generation_prompt=True, padding_side="left",
        )  # fmt: skip
        prompt_len = batch["input_ids"].shape[1]
        for use_cache in (True, False):
            times = []
            for _ in range(args.repeats):
                model.encoder_cache.clear()  # every run pays for encoding, as a fresh request would
                t0 = time.perf_counter()
                out = model.generate(batch, max_new_tokens=args.new_tokens, use_cache=use_cache, stop_at_eos=False)
                times.append(time.perf_counter() - t0)
                assert all(len(o) == args.new_tokens for o in out)
            tps = bs * args.new_tokens / statistics.median(times)
            results[(bs, use_cache)] = tps
            print(f"batch {bs}  prompt {prompt_len:4d} tokens  {'kv-cache' if use_cache else 'recompute':9s}  "
                  f"{tps:8.1f} tokens/s  (median {statistics.median(times):.2f} s)")  # fmt: skip
    for bs in (1, 8):
        print(f"speed-up kv-cache / recompute at batch {bs}: {results[(bs, True)] / results[(bs, False)]:.2f}x")


if __name__ == "__main__":
    main()
