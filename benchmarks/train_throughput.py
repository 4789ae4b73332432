"""Instruction-tuning throughput of the default architecture: samples/s and model FLOPs utilisation (MFU).

MFU = (FLOPs of one training step, counted by torch's FlopCounterMode) × steps/s ÷ the machine's measured
matmul peak (median of large square matmuls in the training dtype). Real conversations from a small
`seqchat data build` over ../shared/data; decoder frozen, encoders + projector trained, as in training.

    python benchmarks/train_throughput.py [--steps 5] [--batch-size 4] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def matmul_peak(device: str, dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Median FLOP/s of an n×n×n matmul on this device."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        (a @ b).sum().item()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times[1:])


def main() -> None:
    """Run and print the figures."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--config", default=str(ROOT / "src/seqchat/configs/model/seqchat-small.yaml"))
    args = p.parse_args()

    from torch.utils.flop_counter import FlopCounterMode

    from seqchat.data.build import BuildConfig, build_dataset
    from seqchat.modeling.config import SeqChatConfig
    from seqchat.modeling.model import SeqChatForConditionalGeneration
    from seqchat.training.instruct import InstructJob, load_records

    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = SeqChatForConditionalGeneration(SeqChatConfig.from_file(args.config)).to(args.device).train()
    with tempfile.TemporaryDirectory() as tmp:
        tasks = ["promoter_300_tata", "splice_sites_human", "protein_solubility", "protein_meltome"]
        build_dataset(tmp, BuildConfig(tasks=tasks, max_per_split=32, multi=False))
        job = InstructJob(model, load_records(tmp, "train"), load_records(tmp, "valid"), args.batch_size)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)

    def step(i: int) -> None:
        batch = job.batch(i, 0, 0, 1)
        with torch.autocast(args.device, dtype=dtype, enabled=dtype != torch.float32):
            loss, _ = job.loss(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as fc:
        step(0)
    flops = fc.get_total_flops()
    tokens = []
    times = []
    for i in range(1, args.steps + 1):
        tokens.append(int(job.batch(i, 0, 0, 1)["attention_mask"].sum()))
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(i)
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = matmul_peak(args.device, dtype)
    med = statistics.median(times)
    print(f"# train throughput: device {args.device} ({torch.get_num_threads()} threads), dtype {dtype}, "
          f"batch {args.batch_size}, {args.steps} timed steps, median")  # fmt: skip
    print(f"step time            {med:.3f} s")
    print(f"samples/s            {args.batch_size / med:.3f}")
    print(f"decoder tokens/s     {statistics.median(tokens) / med:.1f}")
    print(f"FLOPs per step       {flops / 1e9:.1f} GFLOP (FlopCounterMode, step 0)")
    print(f"matmul peak          {peak / 1e9:.1f} GFLOP/s (measured)")
    print(f"MFU                  {flops / med / peak:.3f}")


if __name__ == "__main__":
    main()
