"""Loaders of the protein sources: DeepSol, FLIP, Rocklin stability and CLEAN EC. Each: (data root,
**args from the task registry) -> {source split name: [Example, ...]}."""

from __future__ import annotations

import csv
from pathlib import Path

from seqchat.data.records import (
    Example,
    Raw,
)
from seqchat.data.sources.files import open_text, read_lines, zip_csv
from seqchat.errors import SeqChatInputError


def load_deepsol(root: Path) -> Raw:
    """DeepSol: parallel src (one protein a line) and tgt (0/1 a line) files; the val files serve as train."""
    out: Raw = {}
    for src, split in (("val", "dev"), ("test", "test")):
        seqs = list(read_lines(root / "protein" / "deepsol" / f"{src}_src.gz"))
        labels = list(read_lines(root / "protein" / "deepsol" / f"{src}_tgt.gz"))
        if len(seqs) != len(labels):
            raise SeqChatInputError(f"DeepSol {src}: {len(seqs)} sequences but {len(labels)} labels")
        out[split] = [
            Example(s, int(y), source_id=f"{src}:{i + 1}") for i, (s, y) in enumerate(zip(seqs, labels, strict=True))
        ]
    return out


def load_flip(root: Path, archive: str, member: str) -> Raw:
    """FLIP split CSVs (`sequence,target,set[,validation]`); `validation=True` rows form the valid split."""
    out: Raw = {}
    for i, r in enumerate(zip_csv(root / "protein" / "flip" / archive, member)):
        split = r["set"]
        if split == "train" and r.get("validation", "").strip() == "True":
            split = "valid"
        out.setdefault(split, []).append(Example(r["sequence"], float(r["target"]), source_id=f"{member}:{i + 2}"))
    return out


def load_rocklin(root: Path, test_rounds: tuple[str, ...]) -> Raw:
    """Rocklin 2017 miniprotein stability scores; design rounds in `test_rounds` are the test split."""
    out: Raw = {"train": [], "test": []}
    with open_text(root / "protein" / "rocklin" / "rocklin2017_stability.csv.gz") as fh:
        for r in csv.DictReader(fh):
            split = "test" if r["round"] in test_rounds else "train"
            meta = {"topology": r["topology"], "round": r["round"]}
            out[split].append(Example(r["sequence"], float(r["stabilityscore_cnn_calibrated"]), meta, r["name"]))
    return out


def load_clean_ec(root: Path) -> Raw:
    """CLEAN EC data: split10 is train, new-392 is test; targets are sorted lists of EC numbers."""
    out: Raw = {}
    for name, split in (("split10", "train"), ("new", "test")):
        with open_text(root / "protein" / "ec_clean" / f"{name}.csv.gz") as fh:
            out[split] = [
                Example(
                    r["Sequence"], sorted({e.strip() for e in r["EC number"].split(";") if e.strip()}), {}, r["Entry"]
                )
                for r in csv.DictReader(fh, delimiter="\t")
            ]
    return out
