"""What the benchmark pages' tables share: how a number is written in a cell, and the gene tasks' columns."""

from __future__ import annotations

import math
from typing import Any

# the metric columns of each gene-function task's table (report and ablation)
GENE_TASK_METRICS = {
    "gene_description": ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l"),
    "gene_ec": ("ec_exact_match", "ec_hprecision", "ec_hrecall", "ec_hf1"),
    "protein_ec": ("fmax", "ec_exact_match", "ec_hf1"),
}


def cell(v: Any, digits: int = 3) -> str:
    """A table cell: a float to `digits` places, a dash for a missing or NaN value, anything else as text."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)
