"""Pair tasks (two sequences, one answer): loaders of the multi-molecule interaction sets, their cleaning rules and
the pair split rules.

A pair `Example` holds the first sequence in `residues` and the second in `partner` (the task's `inputs` and
`roles` name their modalities and roles). Leakage is judged on the pair: a held-out pair whose two sequences
both occur together in train is removed; one sequence may recur in other pairs (antigens in AAN, proteins in RPI).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from seqchat.data.records import Example, Raw, clean_residues, seq_key
from seqchat.data.sources.files import open_text
from seqchat.data.splits import SplitReport, TaskSplits
from seqchat.errors import SeqChatInputError

HELD_OUT = ("train", "valid", "test")


def pair_key(ex: Example) -> tuple[str, str]:
    """Identity of a pair for leakage checks: both sequences' keys, in role order."""
    return seq_key(ex.residues), seq_key(ex.partner)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open_text(path) as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------------------------- loaders


def load_aan(root: Path) -> Raw:
    """DeepAAI HIV-1 antibody-antigen pairs: DeepAAI's seed-0 train/valid/test and the extra test_seen set."""
    out: Raw = {}
    for split in ("train", "valid", "test", "test_seen"):
        path = root / "multi" / "aan" / f"{split}.csv.gz"
        out[split] = [
            Example(r["antibody_seq"], int(r["label"]), {}, f"{path.name}:row {r['row']}", partner=r["antigen_seq"])
            for r in _read_csv(path)
        ]
    return out


RPI_EXTRA = ("RPI369", "RPI488", "RPI1807", "RPI2241")


def load_rpi(root: Path) -> Raw:
    """NPInter v2.0 RNA-protein pairs (RNAs <= 1000 nt, split by RNA id) and the PDB-derived RPI sets as extra
    tests."""
    files = {s: f"npinter2_le1000nt_{s}" for s in HELD_OUT} | {n.lower(): n for n in RPI_EXTRA}
    out: Raw = {}
    for split, stem in files.items():
        out[split] = [
            Example(r["rna_seq"], int(r["label"]), {}, f"{r['rna_id']}|{r['protein_id']}", partner=r["protein_seq"])
            for r in _read_csv(root / "multi" / "rpi" / f"{stem}.csv.gz")
        ]
    return out


def load_sirna(root: Path) -> Raw:
    """Huesken 2005 siRNAs: guide (antisense) strand, 57-nt target window and normalised inhibition."""
    out: Raw = {}
    for split in HELD_OUT:
        path = root / "multi" / "sirna" / f"huesken_{split}.csv.gz"
        out[split] = [
            Example(
                r["sirna_antisense"], float(r["inhibition"]), {}, f"huesken:row {r['row']}",
                partner=r["target_mrna_57nt"],
            )
            for r in _read_csv(path)
        ]
    return out


PAIR_LOADERS: dict[str, Callable[..., Raw]] = {"aan": load_aan, "rpi": load_rpi, "sirna": load_sirna}


# ------------------------------------------------------------------------------------- cleaning rules


@dataclass(frozen=True)
class CleaningRule:
    """One documented edit of the source residues: which input (0 first, 1 second) and how."""

    text: str
    role: int
    fix: Callable[[str], str]


def _pdb_rna(s: str) -> str:
    # PDB chains write T for a few bases and F, I (inosine), X for modified or unknown ones
    return re.sub("[^ACGUN]", "N", s.upper().replace("T", "U"))


# by loader; applied before the modality check, every edited example counted in the split report
PAIR_CLEANING: dict[str, tuple[CleaningRule, ...]] = {
    "aan": (
        CleaningRule("antibody: X (stop/unknown at a chain end or the heavy-light junction) removed", 0,
                     lambda s: s.replace("X", "")),
    ),
    "rpi": (CleaningRule("rna: PDB letters outside ACGUN read as N (T as U)", 0, _pdb_rna),),
    "sirna": (
        CleaningRule("target: X padding beyond the transcript end read as N", 1, lambda s: s.replace("X", "N")),
    ),
}  # fmt: skip


def _clean_pairs(
    rows: list[Example], modalities: tuple[str, ...], rules: Iterable[CleaningRule], report: SplitReport, split: str
) -> list[Example]:
    out = []
    for ex in rows:
        seqs = [ex.residues, ex.partner]
        for rule in rules:
            fixed = rule.fix(seqs[rule.role])
            if fixed != seqs[rule.role]:
                seqs[rule.role] = fixed
                report.cleaned[f"{split}: {rule.text}"] = report.cleaned.get(f"{split}: {rule.text}", 0) + 1
        a, b = (clean_residues(s, m) for s, m in zip(seqs, modalities, strict=True))
        if a and b:
            ex.residues, ex.partner = a, b
            out.append(ex)
    report.add(f"{split}: invalid characters", len(rows) - len(out))
    return out


def _dedupe(rows: list[Example], report: SplitReport, split: str) -> list[Example]:
    """Each pair once; a pair seen with two different labels is dropped altogether."""
    groups: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for ex in rows:
        groups[pair_key(ex)].append(ex)
    out = []
    for ex in rows:
        g = groups[pair_key(ex)]
        if g[0] is ex and len({repr(e.target) for e in g}) == 1:
            out.append(ex)
    conflicting = sum(len(g) for g in groups.values() if len({repr(e.target) for e in g}) > 1)
    report.add(f"{split}: pair with two different labels", conflicting)
    report.add(f"{split}: repeated pair", len(rows) - len(out) - conflicting)
    return out


def _drop(rows: list[Example], keys: set[tuple[str, str]], report: SplitReport, reason: str) -> list[Example]:
    kept = [ex for ex in rows if pair_key(ex) not in keys]
    report.add(reason, len(rows) - len(kept))
    return kept


def pair_test_keys(examples: Iterable[Example]) -> set[tuple[str, str]]:
    """Pair keys of a test split (for screening the training data of other pair tasks)."""
    return {pair_key(ex) for ex in examples}


def resolve_pair_splits(
    raw: Raw,
    modalities: tuple[str, ...],
    loader: str,
    other_test_pairs: set[tuple[str, str]] | None = None,
) -> TaskSplits:
    """Apply the pair rules: cleaning, one copy per pair, no held-out pair that occurs in train (see RULE_PAIRS)."""
    missing = [s for s in HELD_OUT if s not in raw]
    if missing:
        raise SeqChatInputError(f"pair task source ({loader}) has no {', '.join(missing)} split")
    report = SplitReport(source_counts={k: len(v) for k, v in raw.items()}, valid_from="valid")
    rules = PAIR_CLEANING.get(loader, ())
    sets = {k: _clean_pairs(list(v), modalities, rules, report, k) for k, v in raw.items()}
    # before de-duplication, so that every held-out row repeating a training pair is counted under this reason
    train_keys = {pair_key(ex) for ex in sets["train"]}
    for name in sets:
        if name != "train":
            sets[name] = _drop(sets[name], train_keys, report, f"{name}: pair also in train")
    sets = {k: _dedupe(v, report, k) for k, v in sets.items()}
    sets["valid"] = _drop(sets["valid"], pair_test_keys(sets["test"]), report, "valid: pair also in test")
    other = (other_test_pairs or set()) - pair_test_keys(sets["test"])
    for name in ("train", "valid"):
        sets[name] = _drop(sets[name], other, report, f"{name}: pair in another task's test")
    extra = {k: v for k, v in sets.items() if k not in HELD_OUT}
    return TaskSplits(sets["train"], sets["valid"], sets["test"], report, extra)
