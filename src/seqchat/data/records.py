"""The record every data loader returns (`Example`) and the residue rules shared by loaders and splits."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from seqchat.modeling.sequences import ALPHABETS

# IUPAC ambiguity codes in nucleotide sources are read as N (the encoders' unknown base).
_IUPAC_AMBIGUOUS = "RYKMSWBDHV"
_TO_DNA = str.maketrans({**{c: "N" for c in _IUPAC_AMBIGUOUS}, "U": "T"})
_TO_RNA = str.maketrans({**{c: "N" for c in _IUPAC_AMBIGUOUS}, "T": "U"})
_VALID = {m: re.compile("[" + re.escape("".join(sorted(a))) + "]+") for m, a in ALPHABETS.items()}
_COMPLEMENT = str.maketrans("ACGTUN", "TGCAAN")


@dataclass
class Example:
    """One labelled input: residues (normalised for its modality), target, metadata and a source id.

    A pair task's example holds its second sequence in `partner` (modality `task.inputs[1]`, role `task.roles[1]`);
    `residues` is always the first (`task.inputs[0]`). Single-sequence tasks leave `partner` empty.
    """

    residues: str
    target: Any
    meta: dict[str, str] = field(default_factory=dict)
    source_id: str = ""
    partner: str = ""

    @property
    def sequences(self) -> tuple[str, ...]:
        """Every input sequence in the task's `inputs` order: one, or two for a pair task."""
        return (self.residues, self.partner) if self.partner else (self.residues,)

    @property
    def model_input(self) -> str | tuple[str, str]:
        """What `predict_task` takes for this example: the residues, or a pair task's (first, second)."""
        return (self.residues, self.partner) if self.partner else self.residues


def reverse_complement(dna: str) -> str:
    """Reverse complement of a DNA/RNA string (written as DNA)."""
    return dna.translate(_COMPLEMENT)[::-1]


def seq_key(residues: str) -> str:
    """Identity key used for leakage checks: upper case, RNA written as DNA."""
    return residues.upper().replace("U", "T")


def clean_residues(raw: str, modality: str) -> str | None:
    """Normalise residues for a modality; None if a character is outside its alphabet."""
    s = raw.strip().upper()
    if not s.isalpha():
        s = "".join(s.split())
    if modality == "dna":
        s = s.translate(_TO_DNA)
    elif modality == "rna":
        s = s.translate(_TO_RNA)
    return s if _VALID[modality].fullmatch(s) else None


def stable_fraction(text: str, salt: str) -> float:
    """A number in [0, 1) fixed by the text (not by any seed), so split membership never changes."""
    h = hashlib.md5(f"{salt}\x00{text}".encode()).hexdigest()
    return int(h[:12], 16) / float(1 << 48)


Raw = dict[str, list[Example]]
