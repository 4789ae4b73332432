"""Biological sequences: alphabets per modality, validation, normalisation and FASTA reading."""

from __future__ import annotations

import gzip
import io
import itertools
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from Bio.SeqIO.FastaIO import SimpleFastaParser

from seqchat.errors import SeqChatInputError

# NT-style encoders read DNA; RNA is stored with U and turned into T only when tokenized.
ALPHABETS: dict[str, frozenset[str]] = {
    "dna": frozenset("ACGTN"),
    "rna": frozenset("ACGUN"),
    "protein": frozenset("ACDEFGHIKLMNPQRSTVWY" + "XBZUO*"),
}
MODALITIES: tuple[str, ...] = tuple(ALPHABETS)


@dataclass(frozen=True)
class Sequence:
    """A validated, upper-case biological sequence with a name and a modality."""

    name: str
    residues: str
    modality: str

    def __len__(self) -> int:
        return len(self.residues)

    def as_dna(self) -> str:
        """The residues with U written as T (what nucleotide encoders read)."""
        if self.modality == "protein":
            raise SeqChatInputError(f"sequence '{self.name}' is a protein; it has no DNA form")
        return self.residues.replace("U", "T")


def check_modality(modality: str) -> str:
    """Return the lower-cased modality or raise a clear error naming the valid ones."""
    m = modality.lower().strip()
    if m not in ALPHABETS:
        raise SeqChatInputError(f"unknown modality '{modality}': use one of {', '.join(MODALITIES)}")
    return m


def normalize(residues: str, modality: str) -> str:
    """Upper-case, drop whitespace and convert T/U to the modality's convention."""
    s = "".join(residues.split()).upper()
    if modality == "dna":
        s = s.replace("U", "T")
    elif modality == "rna":
        s = s.replace("T", "U")
    return s


def make_sequence(residues: str, modality: str, name: str = "seq", max_length: int | None = None) -> Sequence:
    """Validate and normalise one sequence; raise one clear error naming record, character and position."""
    modality = check_modality(modality)
    s = normalize(residues, modality)
    if not s:
        raise SeqChatInputError(f"sequence '{name}' is empty")
    alphabet = ALPHABETS[modality]
    for i, ch in enumerate(s):
        if ch not in alphabet:
            hint = ""
            if modality != "protein" and ch in ALPHABETS["protein"]:
                hint = " (is this a protein? pass modality 'protein')"
            raise SeqChatInputError(
                f"sequence '{name}': character '{ch}' at position {i + 1} is not valid {modality.upper()}; "
                f"allowed: {''.join(sorted(alphabet))}{hint}"
            )
    if max_length is not None and len(s) > max_length:
        raise SeqChatInputError(
            f"sequence '{name}' is {len(s)} residues long; the limit is {max_length}: split it or raise the limit"
        )
    return Sequence(name=name, residues=s, modality=modality)


def guess_modality(residues: str) -> str:
    """Guess DNA, RNA or protein from the letters used (DNA wins ties)."""
    letters = set(residues.upper()) - set(" \n\r\t")
    if letters <= ALPHABETS["dna"]:
        return "dna"
    if letters <= ALPHABETS["rna"]:
        return "rna"
    return "protein"


def infer_modality(residues: str, name: str = "seq") -> str:
    """`guess_modality` for user input: nucleotides mixing T and U are refused instead of read as protein."""
    modality = guess_modality(residues)
    letters = set(residues.upper()) - set(" \n\r\t")
    if modality == "protein" and letters <= ALPHABETS["dna"] | ALPHABETS["rna"]:
        raise SeqChatInputError(
            f"sequence '{name}' mixes T and U, so it is neither clean DNA nor RNA: fix the stray letter, "
            "or pass the modality (dna, rna or protein) explicitly"
        )
    return modality


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    p = Path(path)
    try:
        exists = p.exists()
    except (OSError, ValueError):  # a name too long, or with a NUL byte, names no file
        exists = False
    if not exists:
        raise SeqChatInputError(f"FASTA file '{str(p)[:200]}' does not exist")
    if p.is_dir():
        raise SeqChatInputError(f"'{p}' is a directory; pass a FASTA file")
    try:
        if p.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8")
        return open(p, encoding="utf-8")
    except OSError as e:
        raise SeqChatInputError(f"FASTA file '{p}' cannot be opened ({e.strerror or e})") from None


def checked_lines(handle: Iterable[str], source: str) -> Iterator[str]:
    """The lines of a text handle, with unreadable bytes (not UTF-8, broken gzip) turned into one clear error."""
    try:
        yield from handle
    except UnicodeDecodeError as e:
        raise SeqChatInputError(
            f"{source}: byte {e.start} is not UTF-8 text ({e.reason}): save the file as UTF-8 "
            "(or ASCII) FASTA"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise SeqChatInputError(
            f"{source}: not a readable gzip file ({e or type(e).__name__}): it is truncated or not "
            "gzip-compressed; re-download it, or drop the .gz suffix if it is plain text"
        ) from None
    except OSError as e:
        raise SeqChatInputError(f"{source}: cannot be read ({e.strerror or e})") from None


def iter_fasta_records(handle: Iterable[str], source: str = "<text>") -> Iterator[tuple[str, str]]:
    """Yield (header, raw residues) pairs; raise a clear error on malformed FASTA."""
    lines = checked_lines(handle, source)
    first = ""
    for line in lines:
        if line.strip():
            first = line
            break
    if not first:
        return
    if not first.startswith(">"):
        raise SeqChatInputError(
            f"{source}: malformed FASTA, the first non-empty line must start with '>' but reads '{first.strip()[:40]}'"
        )
    for header, residues in SimpleFastaParser(itertools.chain([first], lines)):
        if not header.strip():
            raise SeqChatInputError(f"{source}: malformed FASTA, a record has an empty header line '>'")
        yield header, residues


def read_fasta(
    source: str | os.PathLike | Iterable[str],
    modality: str | None = None,
    max_length: int | None = None,
) -> list[Sequence]:
    """Read a FASTA file (plain or .gz), or FASTA text, into validated sequences named by their ids."""
    is_text = isinstance(source, str) and ("\n" in source or source.lstrip().startswith(">"))
    if isinstance(source, (str, os.PathLike)) and not is_text:
        with _open_text(source) as fh:
            return _records_to_sequences(iter_fasta_records(fh, str(source)), modality, max_length, str(source))
    text = source.splitlines(keepends=True) if isinstance(source, str) else source
    return _records_to_sequences(iter_fasta_records(text), modality, max_length, "<text>")


def _records_to_sequences(
    records: Iterable[tuple[str, str]], modality: str | None, max_length: int | None, source: str
) -> list[Sequence]:
    out: list[Sequence] = []
    seen: set[str] = set()
    for header, residues in records:
        name = header.split()[0]
        if name in seen:
            raise SeqChatInputError(f"{source}: two records share the id '{name}'; ids must be unique")
        seen.add(name)
        out.append(make_sequence(residues, modality or infer_modality(residues, name), name, max_length))
    if not out:
        raise SeqChatInputError(f"{source}: no FASTA records found")
    return out


def as_sequence(value: Sequence | str, name: str, modality: str | None = None) -> Sequence:
    """Accept a Sequence or a plain string and return a validated Sequence."""
    if isinstance(value, Sequence):
        if modality is not None and check_modality(modality) != value.modality:
            raise SeqChatInputError(
                f"sequence '{value.name}' is {value.modality.upper()} but a {modality.upper()} sequence is needed here"
            )
        return value
    if not isinstance(value, str):
        raise SeqChatInputError(f"sequence '{name}' must be a string or a Sequence, got {type(value).__name__}")
    return make_sequence(value, modality or infer_modality(value, name), name)


def as_named_sequences(values: Mapping[str, Sequence | str] | Iterable[Sequence]) -> dict[str, Sequence]:
    """Turn a mapping name→sequence or a list of Sequences into a name→Sequence dict."""
    if isinstance(values, Mapping):
        return {k: as_sequence(v, k) for k, v in values.items()}
    out: dict[str, Sequence] = {}
    for s in values:
        if s.name in out:
            raise SeqChatInputError(f"two sequences share the name '{s.name}'")
        out[s.name] = s
    return out
