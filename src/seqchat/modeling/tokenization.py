"""Sequence tokenizers (NT 6-mers for nucleotides, ESM residues for proteins) and window splitting."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class SequenceTokenizer:
    """A fixed-vocabulary tokenizer whose ids match a published encoder (NT or ESM-2)."""

    vocab: tuple[str, ...]
    k: int  # k-mer size; 1 means one token per residue
    cls_token: str
    pad_token: str
    mask_token: str
    unk_token: str
    eos_token: str | None  # appended after the sequence when not None (ESM-2 does, NT does not)
    translate: tuple[tuple[str, str], ...] = ()  # residue rewrites before lookup (RNA U -> T)

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return len(self.vocab)

    @cached_property
    def token_to_id(self) -> dict[str, int]:
        """Token string → id."""
        return {t: i for i, t in enumerate(self.vocab)}

    def id(self, token: str) -> int:
        """Id of one token."""
        return self.token_to_id[token]

    @property
    def pad_token_id(self) -> int:
        """Id of the padding token."""
        return self.id(self.pad_token)

    @property
    def mask_token_id(self) -> int:
        """Id of the mask token (masked-LM pretraining)."""
        return self.id(self.mask_token)

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids that carry no residue (cls, eos, pad, mask, unk...)."""
        return frozenset(i for i, t in enumerate(self.vocab) if t.startswith("<"))

    def tokenize(self, residues: str) -> list[str]:
        """Split residues into tokens: non-overlapping k-mers, single residues where none fits or around N."""
        for a, b in self.translate:
            residues = residues.replace(a, b)
        if self.k == 1:
            return list(residues)
        out: list[str] = []
        for i, part in enumerate(residues.split("N")):
            if i:
                out.append("N")
            n_full = len(part) // self.k * self.k
            out.extend(part[j : j + self.k] for j in range(0, n_full, self.k))
            out.extend(part[n_full:])
        return out

    def encode(self, residues: str) -> list[int]:
        """Token ids with the encoder's special tokens around the sequence."""
        t2i = self.token_to_id
        unk = t2i[self.unk_token]
        ids = [t2i[self.cls_token]] + [t2i.get(t, unk) for t in self.tokenize(residues)]
        if self.eos_token is not None:
            ids.append(t2i[self.eos_token])
        return ids


def nucleotide_transformer_vocab(k: int = 6) -> tuple[str, ...]:
    """The Nucleotide Transformer vocabulary: 6 specials, 4^k k-mers over ATCG, then A T C G N (4107 for k=6)."""
    specials = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")
    kmers = tuple("".join(p) for p in itertools.product("ATCG", repeat=k))
    return specials + kmers + ("A", "T", "C", "G", "N")


# ESM-2's 33-token alphabet, in its order, so the real ESM-2 checkpoints read our ids.
ESM2_VOCAB: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C",
    "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip

_NT_VOCAB = nucleotide_transformer_vocab(6)

# name -> tokenizer; the composite config names one per encoder.
SEQUENCE_TOKENIZERS: dict[str, SequenceTokenizer] = {
    "nt_6mer": SequenceTokenizer(
        vocab=_NT_VOCAB, k=6, cls_token="<cls>", pad_token="<pad>", mask_token="<mask>",
        unk_token="<unk>", eos_token=None, translate=(("U", "T"),),
    ),
    # a stop codon '*' has no ESM-2 token; '.' is ESM-2's otherwise unused residue slot for it
    "esm_residue": SequenceTokenizer(
        vocab=ESM2_VOCAB, k=1, cls_token="<cls>", pad_token="<pad>", mask_token="<mask>",
        unk_token="<unk>", eos_token="<eos>", translate=(("*", "."),),
    ),
}  # fmt: skip


def get_sequence_tokenizer(name: str) -> SequenceTokenizer:
    """Look up a sequence tokenizer by its registry name."""
    try:
        return SEQUENCE_TOKENIZERS[name]
    except KeyError:
        raise KeyError(f"unknown sequence tokenizer '{name}': choose from {sorted(SEQUENCE_TOKENIZERS)}") from None


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Start offsets of overlapping windows covering a sequence (GeneChat: 512 nt windows, overlap 10)."""
    if length <= window:
        return [0]
    step = window - overlap
    n = math.ceil((length - overlap) / step)
    return [i * step for i in range(n)]


def split_windows(residues: str, window: int, overlap: int) -> list[str]:
    """The residues cut into overlapping windows; the last window may be shorter."""
    return [residues[s : s + window] for s in window_starts(len(residues), window, overlap)]
