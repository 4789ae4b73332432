"""Readers for every source format in the shared data, and the split rules that turn them into train/valid/test.

A loader returns the splits the source itself has (`train`, `dev`, `valid`, `test`) as lists of `Example`;
`resolve_splits` then applies the project's rules (dev as train where train is missing, valid carved from
train, every test sequence removed from train and valid).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqchat.data.records import (
    Example,
    Raw,
    clean_residues,
    reverse_complement,
    seq_key,
    stable_fraction,
)
from seqchat.data.sources.genes import GENE_TASKS
from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import iter_fasta_records


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _lines(path: Path) -> Iterator[str]:
    with _open_text(path) as fh:
        for line in fh:
            yield line.rstrip("\r\n")


# --------------------------------------------------------------------------------------------- loaders
# Each loader: (data root, **args from the task registry) -> {source split name: [Example, ...]}.


def load_label_csv(
    root: Path, folder: str, splits: Iterable[str], label_col: str = "label", label_map: dict[int, str] | None = None
) -> Raw:
    """GUE / DeepGene `sequence,label` CSVs: one file per split; `label_map` names integer classes."""
    out: Raw = {}
    lab = (lambda y: label_map[int(y)]) if label_map else int
    for split in splits:
        path = root / folder / f"{split}.csv.gz"
        with _open_text(path) as fh:
            reader = csv.DictReader(fh)
            out[split] = [
                Example(r["sequence"], lab(r[label_col]), source_id=f"{path.name}:{i + 2}") for i, r in enumerate(reader)
            ]
    return out


_IENH_CLASSES = ("strong", "weak", "none")


def load_ienhancer(root: Path, folder: str, mode: str) -> Raw:
    """iEnhancer-2L text files: class blocks opened by a `(k)...` header line, then `>id SEQUENCE` lines."""
    out: Raw = {}
    for split in ("train", "test"):
        cls = None
        rows: list[Example] = []
        for line in _lines(root / folder / f"{split}.txt.gz"):
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
        for i, line in enumerate(_lines(root / "dna" / "plant_pgb" / f"{stem}.{split}.jsonl.gz")):
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
        with _open_text(path) as fh:
            out[split] = [Example(s, h.split()[-1], source_id=h.split()[0]) for h, s in iter_fasta_records(fh, str(path))]
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


def load_deepsol(root: Path) -> Raw:
    """DeepSol: parallel src (one protein a line) and tgt (0/1 a line) files; the val files serve as train."""
    out: Raw = {}
    for src, split in (("val", "dev"), ("test", "test")):
        seqs = list(_lines(root / "protein" / "deepsol" / f"{src}_src.gz"))
        labels = list(_lines(root / "protein" / "deepsol" / f"{src}_tgt.gz"))
        if len(seqs) != len(labels):
            raise SeqChatInputError(f"DeepSol {src}: {len(seqs)} sequences but {len(labels)} labels")
        out[split] = [Example(s, int(y), source_id=f"{src}:{i + 1}") for i, (s, y) in enumerate(zip(seqs, labels, strict=True))]
    return out


def _zip_csv(path: Path, member: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as z, z.open(member) as fh:
        return list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")))


def load_flip(root: Path, archive: str, member: str) -> Raw:
    """FLIP split CSVs (`sequence,target,set[,validation]`); `validation=True` rows form the valid split."""
    out: Raw = {}
    for i, r in enumerate(_zip_csv(root / "protein" / "flip" / archive, member)):
        split = r["set"]
        if split == "train" and r.get("validation", "").strip() == "True":
            split = "valid"
        out.setdefault(split, []).append(Example(r["sequence"], float(r["target"]), source_id=f"{member}:{i + 2}"))
    return out


def load_rocklin(root: Path, test_rounds: tuple[str, ...]) -> Raw:
    """Rocklin 2017 miniprotein stability scores; design rounds in `test_rounds` are the test split."""
    out: Raw = {"train": [], "test": []}
    with _open_text(root / "protein" / "rocklin" / "rocklin2017_stability.csv.gz") as fh:
        for r in csv.DictReader(fh):
            split = "test" if r["round"] in test_rounds else "train"
            meta = {"topology": r["topology"], "round": r["round"]}
            out[split].append(Example(r["sequence"], float(r["stabilityscore_cnn_calibrated"]), meta, r["name"]))
    return out


def load_clean_ec(root: Path) -> Raw:
    """CLEAN EC data: split10 is train, new-392 is test; targets are sorted lists of EC numbers."""
    out: Raw = {}
    for name, split in (("split10", "train"), ("new", "test")):
        with _open_text(root / "protein" / "ec_clean" / f"{name}.csv.gz") as fh:
            out[split] = [
                Example(r["Sequence"], sorted({e.strip() for e in r["EC number"].split(";") if e.strip()}), {}, r["Entry"])
                for r in csv.DictReader(fh, delimiter="\t")
            ]
    return out


def load_genes(root: Path, task: str) -> Raw:
    """Gene-function tasks from the annotated genomes (GenBank), split by homology cluster: see `seqchat.data.sources.genes`."""
    return GENE_TASKS[task](root)


def load_rrna16s_phylum(root: Path, test_fraction: float, min_count: int) -> Raw:
    """RDP gold 16S rRNA: phylum (second lineage field) as the class; rare phyla left out."""
    path = root / "rna" / "rrna16s_gold" / "rRNA16S.gold.fasta.gz"
    with _open_text(path) as fh:
        recs = [(h.split()[0], h.split("\t")[-1].split(";"), s) for h, s in iter_fasta_records(fh, str(path))]
    phyla = [lin[1].strip() if len(lin) > 1 else "" for _, lin, _ in recs]
    common = {p for p, n in Counter(phyla).items() if p and n >= min_count}
    out: Raw = {"train": [], "test": []}
    for (ident, _, seq), phylum in zip(recs, phyla, strict=True):
        if phylum in common:
            split = "test" if stable_fraction(seq_key(seq), "rrna16s") < test_fraction else "train"
            out[split].append(Example(seq, phylum, source_id=ident))
    return out


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


# ------------------------------------------------------------------------------------------ split rules


@dataclass
class SplitReport:
    """What the split rules did to one task: source counts and every removal, by reason."""

    source_counts: dict[str, int] = field(default_factory=dict)
    train_from: str = "train"
    valid_from: str = ""
    removed: dict[str, int] = field(default_factory=dict)
    # examples kept but edited by a cleaning rule, by rule (pair tasks)
    cleaned: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int) -> None:
        """Count n removed examples under a reason."""
        if n:
            self.removed[reason] = self.removed.get(reason, 0) + n


@dataclass
class TaskSplits:
    """The final train / valid / test examples of one task and the report of how they were made."""

    train: list[Example]
    valid: list[Example]
    test: list[Example]
    report: SplitReport
    # further test sets of the source (e.g. AAN test_seen, the PDB RPI sets): evaluated, never trained on
    extra: dict[str, list[Example]] = field(default_factory=dict)

    def get(self, split: str) -> list[Example]:
        """The examples of one split (or extra test set) by name."""
        if split in self.extra:
            return self.extra[split]
        if split not in ("train", "valid", "test"):
            known = ", ".join(("train", "valid", "test", *self.extra))
            raise SeqChatInputError(f"unknown split '{split}': use {known}")
        return getattr(self, split)


def test_keys(examples: Iterable[Example], modality: str) -> set[str]:
    """Identity keys of test sequences; DNA also by reverse complement (either strand is the same molecule)."""
    keys: set[str] = set()
    for ex in examples:
        k = seq_key(ex.residues)
        keys.add(k)
        if modality == "dna":
            keys.add(reverse_complement(k))
    return keys


def _clean_all(rows: list[Example], modality: str, report: SplitReport, split: str) -> list[Example]:
    out = []
    for ex in rows:
        s = clean_residues(ex.residues, modality)
        if s is None:
            continue
        ex.residues = s
        out.append(ex)
    report.add(f"{split}: invalid characters", len(rows) - len(out))
    return out


def resolve_splits(
    raw: Raw,
    modality: str,
    salt: str,
    valid_fraction: float = 0.05,
    valid_max: int = 1000,
    other_test_keys: set[str] | None = None,
) -> TaskSplits:
    """Apply the split rules to a loader's output: dev as train where train is missing, a valid split, no test leakage."""
    report = SplitReport(source_counts={k: len(v) for k, v in raw.items()})
    if "test" not in raw:
        raise SeqChatInputError(f"task source for '{salt}' has no test split")
    raw = {k: _clean_all(list(v), modality, report, k) for k, v in raw.items()}
    test = raw["test"]
    if "train" in raw:
        train = raw["train"]
    else:
        train, report.train_from = raw["dev"], "dev"
    if "valid" in raw:
        valid, report.valid_from = raw["valid"], "valid"
    elif "train" in raw and "dev" in raw:
        valid, report.valid_from = raw["dev"], "dev"
    else:
        # carve by a hash of the sequence so identical sequences stay together and the carve ignores the seed
        n_valid = min(valid_max, max(1, round(valid_fraction * len(train))))
        ranked = sorted(range(len(train)), key=lambda i: stable_fraction(seq_key(train[i].residues), salt + ":valid"))
        chosen = set(ranked[:n_valid])
        valid = [ex for i, ex in enumerate(train) if i in chosen]
        train = [ex for i, ex in enumerate(train) if i not in chosen]
        report.valid_from = f"{report.train_from} (hash carve, {n_valid})"
    own = test_keys(test, modality)
    other = (other_test_keys or set()) - own
    for name in ("train", "valid"):
        rows = train if name == "train" else valid
        kept = [ex for ex in rows if seq_key(ex.residues) not in own]
        report.add(f"{name}: also in this task's test", len(rows) - len(kept))
        kept2 = [ex for ex in kept if seq_key(ex.residues) not in other]
        report.add(f"{name}: in another task's test", len(kept) - len(kept2))
        if name == "train":
            train = kept2
        else:
            valid = kept2
    valid_keys = {seq_key(ex.residues) for ex in valid}
    kept = [ex for ex in train if seq_key(ex.residues) not in valid_keys]
    report.add("train: also in valid", len(train) - len(kept))
    return TaskSplits(kept, valid, test, report)
