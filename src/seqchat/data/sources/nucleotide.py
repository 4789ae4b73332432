"""Loaders of the DNA and RNA benchmark sources: GUE-style label CSVs, iEnhancer, the plant genomic benchmark,
ncRNA families, DeepCRISPR and RDP 16S rRNA. Each: (data root, **args from the task registry) ->
{source split name: [Example, ...]}."""

from __future__ import annotations

import csv
import json
import re
import tarfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seqchat.data.records import (
    Example,
    Raw,
    seq_key,
    stable_fraction,
)
from seqchat.data.sources.files import open_text, read_lines
from seqchat.modeling.sequences import iter_fasta_records


def load_label_csv(
    root: Path, folder: str, splits: Iterable[str], label_col: str = "label", label_map: dict[int, str] | None = None
) -> Raw:
    """GUE / DeepGene `sequence,label` CSVs: one file per split; `label_map` names integer classes."""
    out: Raw = {}
    lab = (lambda y: label_map[int(y)]) if label_map else int
    for split in splits:
        path = root / folder / f"{split}.csv.gz"
        with open_text(path) as fh:
            reader = csv.DictReader(fh)
            out[split] = [
                Example(r["sequence"], lab(r[label_col]), source_id=f"{path.name}:{i + 2}")
                for i, r in enumerate(reader)
            ]
    return out


_IENH_CLASSES = ("strong", "weak", "none")


def load_ienhancer(root: Path, folder: str, mode: str) -> Raw:
    """iEnhancer-2L text files: class blocks opened by a `(k)...` header line, then `>id SEQUENCE` lines."""
    out: Raw = {}
    for split in ("train", "test"):
        cls = None
        rows: list[Example] = []
        for line in read_lines(root / folder / f"{split}.txt.gz"):
            if line.startswith("("):
                cls = _IENH_CLASSES[int(line[1]) - 1]
            elif line.startswith(">"):
                ident, _, seq = line[1:].partition(" ")
                target: Any = int(cls != "none") if mode == "binary" else cls
                rows.append(Example(seq.strip(), target, source_id=ident))
        out[split] = rows
    return out


# Species codes used as name suffixes in the plant promoter/terminator strength files.
PLANT_SPECIES = {
    "At": "Arabidopsis thaliana",
    "Zm": "maize",
    "Sb": "sorghum",
    "Maize": "maize",
    "Arabidopsis": "Arabidopsis thaliana",
}


def load_pgb_jsonl(root: Path, stem: str, species_from_name: bool = False) -> Raw:
    """Plant genomic benchmark JSONL (`{"sequence","name","label"}`), train and test files."""
    out: Raw = {}
    for split in ("train", "test"):
        rows = []
        for i, line in enumerate(read_lines(root / "dna" / "plant_pgb" / f"{stem}.{split}.jsonl.gz")):
            if not line.strip():
                continue
            r = json.loads(line)
            meta = {}
            if species_from_name:
                code = re.split("_+", r.get("name", ""))[-1]
                if code in PLANT_SPECIES:
                    meta["species"] = PLANT_SPECIES[code]
            rows.append(Example(r["sequence"], r["label"], meta, r.get("name", f"line {i + 1}")))
        out[split] = rows
    return out


def load_nrc_fasta(root: Path) -> Raw:
    """nRC ncRNA FASTA: the family is the last word of the header."""
    out: Raw = {}
    for split in ("train", "test"):
        path = root / "rna" / "ncrna_nrc" / f"{split}.fasta.gz"
        with open_text(path) as fh:
            out[split] = [
                Example(s, h.split()[-1], source_id=h.split()[0]) for h, s in iter_fasta_records(fh, str(path))
            ]
    return out


CRISPR_CELL_LINES = {"hct116": "HCT116", "hek293t": "HEK293T", "hela": "HeLa", "hl60": "HL-60"}


def load_deepcrispr(root: Path, test_fraction: float) -> Raw:
    """DeepCRISPR on-target regression TSVs (one per cell line); split at random by sgRNA hash, per cell line."""
    path = root / "rna" / "crispr_deepcrispr" / "deepcrispr_reg.tar.gz"
    out: Raw = {"train": [], "test": []}
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not member.name.startswith("paper_data2/ontar/") or not member.isfile():
                continue
            cell = Path(member.name).stem
            text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            for i, line in enumerate(text.splitlines()):
                f = line.split("\t")
                if len(f) != 10:
                    continue
                ex = Example(f[4], float(f[9]), {"cell_line": CRISPR_CELL_LINES[cell]}, f"{cell}:{i + 1}")
                split = "test" if stable_fraction(seq_key(f[4]), "crispr") < test_fraction else "train"
                out[split].append(ex)
    return out


def load_rrna16s_phylum(root: Path, test_fraction: float, min_count: int) -> Raw:
    """RDP gold 16S rRNA: phylum (second lineage field) as the class; rare phyla left out."""
    path = root / "rna" / "rrna16s_gold" / "rRNA16S.gold.fasta.gz"
    with open_text(path) as fh:
        recs = [(h.split()[0], h.split("\t")[-1].split(";"), s) for h, s in iter_fasta_records(fh, str(path))]
    phyla = [lin[1].strip() if len(lin) > 1 else "" for _, lin, _ in recs]
    common = {p for p, n in Counter(phyla).items() if p and n >= min_count}
    out: Raw = {"train": [], "test": []}
    for (ident, _, seq), phylum in zip(recs, phyla, strict=True):
        if phylum in common:
            split = "test" if stable_fraction(seq_key(seq), "rrna16s") < test_fraction else "train"
            out[split].append(Example(seq, phylum, source_id=ident))
    return out
