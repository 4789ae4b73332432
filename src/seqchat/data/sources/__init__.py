"""Readers for every source format in the shared data: one module per source family, and `LOADERS`, the table
the task registry names them by.

A loader returns the splits the source itself has (`train`, `dev`, `valid`, `test`) as lists of `Example`;
`seqchat.data.splits.resolve_splits` then applies the project's rules. Families: `nucleotide` (DNA and RNA
benchmarks), `protein`, `genes` (annotated genomes), `pairs` (two-sequence tasks, with their own split rules);
`files` holds the shared file readers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seqchat.data.records import Raw
from seqchat.data.sources.genes import GENE_TASKS
from seqchat.data.sources.nucleotide import (
    load_deepcrispr,
    load_ienhancer,
    load_label_csv,
    load_nrc_fasta,
    load_pgb_jsonl,
    load_rrna16s_phylum,
)
from seqchat.data.sources.protein import load_clean_ec, load_deepsol, load_flip, load_rocklin

# --------------------------------------------------------------------------------------------- loaders
# Each loader: (data root, **args from the task registry) -> {source split name: [Example, ...]}.


def load_genes(root: Path, task: str) -> Raw:
    """Gene-function tasks from the annotated genomes (GenBank), split by homology cluster: see
    `seqchat.data.sources.genes`."""
    return GENE_TASKS[task](root)


LOADERS: dict[str, Callable[..., Raw]] = {
    "label_csv": load_label_csv,
    "ienhancer": load_ienhancer,
    "pgb_jsonl": load_pgb_jsonl,
    "nrc_fasta": load_nrc_fasta,
    "deepcrispr": load_deepcrispr,
    "deepsol": load_deepsol,
    "flip": load_flip,
    "rocklin": load_rocklin,
    "clean_ec": load_clean_ec,
    "genes": load_genes,
    "rrna16s_phylum": load_rrna16s_phylum,
}
