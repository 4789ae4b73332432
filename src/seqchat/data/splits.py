"""The split rules that turn a source's own splits into train/valid/test: dev as train where train is missing,
valid carved from train, every test sequence removed from train and valid (`resolve_splits`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from seqchat.data.records import (
    Example,
    Raw,
    clean_residues,
    reverse_complement,
    seq_key,
    stable_fraction,
)
from seqchat.errors import SeqChatInputError


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
    """Apply the split rules to a loader's output: dev as train where train is missing, a valid split, no test
    leakage."""
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
