"""Inputs shared by the serving benchmarks: real promoter-task sequences when the shared data is there."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUE_PROM = ROOT.parent / "shared" / "data" / "dna" / "gue" / "prom" / "prom_300_all" / "test.csv.gz"


def dna_sequences(n: int, seed: int = 0) -> tuple[list[str], str]:
    """n distinct 300-nt DNA sequences (GUE prom_300_all test split, cycled; else random) and their source."""
    if GUE_PROM.exists():
        with gzip.open(GUE_PROM, "rt") as fh:
            next(fh)
            pool = [line.split(",")[0] for line in fh]
        rng = random.Random(seed)
        out = []
        for i in range(n):
            s = pool[i % len(pool)]
            if i >= len(pool):  # past the file: shift the sequence so every record stays distinct
                k = rng.randrange(1, len(s))
                s = s[k:] + s[:k]
            out.append(s)
        return out, f"GUE prom_300_all test split ({len(pool)} sequences, cycled)"
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGT") for _ in range(300)) for _ in range(n)], "random 300-nt DNA"
