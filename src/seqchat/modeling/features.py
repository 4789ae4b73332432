"""Training-free sequence features (k-mer spectra, composition) and the feature encoder built on them.

The featurisers turn residue strings into fixed-width vectors with no training: overlapping k-mer
frequencies per k (L1-normalised per k; letters outside the alphabet break k-mers and are skipped) and a
few composition features. `FeatureEncoder` holds one featuriser, its standardisation, an optional
positional CNN on one-hot input, and per-task linear heads fitted by `seqchat train-heads`; it emits a
few tokens per sequence window: spectrum tokens, positional tokens, and one token per task carrying that
head's output beside a fixed task-identity vector, so a question-aware projector can pick the task's token.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from seqchat.errors import SeqChatInputError
from seqchat.modeling.projectors import segment_pool
from seqchat.modeling.tokenization import get_sequence_tokenizer

HEAD_FORMATS = ("logits", "probs")
SPEC_FILE = "encoder.json"
WEIGHTS_FILE = "encoder.safetensors"

DNA_ALPHABET = "ACGT"
PROTEIN_ALPHABET = "ACDEFGHIKLMNPQRSTVWY"

# Kyte-Doolittle hydropathy, in PROTEIN_ALPHABET order
_KD = np.array([1.8, 2.5, -3.5, -3.5, 2.8, -0.4, -3.2, 4.5, -3.9, 3.8, 1.9, -3.5, -1.6, -3.5, -4.5, -0.8, -0.7,
                4.2, -0.9, -1.3], dtype=np.float32)  # fmt: skip


def _code_table(alphabet: str, aliases: dict[str, str]) -> np.ndarray:
    """Byte → residue code (-1 for letters outside the alphabet), case-insensitive."""
    table = np.full(256, -1, dtype=np.int64)
    for i, c in enumerate(alphabet):
        table[ord(c)] = table[ord(c.lower())] = i
    for a, b in aliases.items():
        table[ord(a)] = table[ord(a.lower())] = alphabet.index(b)
    return table


def residue_codes(seqs: Sequence[str], table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All sequences as one code array with a -1 between them, the owning row of each position, and lengths."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    # a NUL separator maps to -1, so no k-mer spans two sequences
    buf = "\0".join(seqs).encode("ascii", "replace")
    codes = table[np.frombuffer(buf, dtype=np.uint8)]
    owner = np.repeat(np.arange(len(seqs)), lengths + 1)[: codes.shape[0]]
    return codes, owner, lengths


def kmer_spectrum(seqs: Sequence[str], table: np.ndarray, size: int, ks: Sequence[int]) -> np.ndarray:
    """(n, sum size**k) overlapping k-mer frequencies, one L1-normalised block per k (lexicographic k-mer order)."""
    n = len(seqs)
    if n == 0:
        return np.zeros((0, sum(size**k for k in ks)), dtype=np.float32)
    codes, owner, _ = residue_codes(seqs, table)
    valid1 = codes >= 0
    idx, valid = np.where(valid1, codes, 0), valid1.copy()
    blocks: dict[int, np.ndarray] = {}
    for k in range(1, max(ks) + 1):
        if k > 1:
            # extend every (k-1)-mer starting at p by the residue at p+k-1
            idx = idx[:-1] * size + np.where(valid1[k - 1 :], codes[k - 1 :], 0)
            valid = valid[:-1] & valid1[k - 1 :]
        if k in ks:
            dim = size**k
            flat = owner[: valid.shape[0]][valid] * dim + idx[valid]
            counts = np.bincount(flat, minlength=n * dim).reshape(n, dim).astype(np.float32)
            blocks[k] = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    return np.concatenate([blocks[k] for k in ks], axis=1)


def _lengths(seqs: Sequence[str]) -> np.ndarray:
    return np.fromiter((len(s) for s in seqs), dtype=np.float32, count=len(seqs))


def dna_composition(seqs: Sequence[str], mono: np.ndarray) -> np.ndarray:
    """log length, GC fraction and the fraction of letters outside ACGT(U)."""
    lengths = _lengths(seqs)
    known = np.fromiter((sum(map(s.upper().count, "ACGTU")) for s in seqs), dtype=np.float32, count=len(seqs))
    gc = mono[:, 1] + mono[:, 2]
    return np.stack([np.log1p(lengths), gc, 1 - known / np.maximum(lengths, 1)], axis=1)


def protein_composition(seqs: Sequence[str], mono: np.ndarray) -> np.ndarray:
    """log length, charge, hydropathy and residue-class fractions from the amino-acid composition."""
    frac = {c: mono[:, i] for i, c in enumerate(PROTEIN_ALPHABET)}
    pos, neg = frac["K"] + frac["R"], frac["D"] + frac["E"]
    hydrophobic = sum(frac[c] for c in "AILMFVW")
    return np.stack([
        np.log1p(_lengths(seqs)), pos, neg, pos - neg, mono @ _KD, hydrophobic,
        frac["F"] + frac["W"] + frac["Y"], sum(frac[c] for c in "STNQ"), frac["G"] + frac["P"], frac["C"],
        frac["H"],
    ], axis=1)  # fmt: skip


@dataclass(frozen=True)
class Featuriser:
    """A training-free map from residue strings to a fixed-width float vector."""

    alphabet: str
    ks: tuple[int, ...]
    composition: Callable[[Sequence[str], np.ndarray], np.ndarray]
    aliases: tuple[tuple[str, str], ...] = ()
    onehot: bool = True  # whether a positional CNN may read this alphabet one-hot

    @property
    def table(self) -> np.ndarray:
        """Byte → residue code lookup."""
        return _code_table(self.alphabet, dict(self.aliases))

    @property
    def dim(self) -> int:
        """Width of the feature vector."""
        return sum(len(self.alphabet) ** k for k in self.ks) + self.composition_dim

    @property
    def composition_dim(self) -> int:
        """Width of the composition block."""
        probe = [self.alphabet]
        return self.composition(probe, kmer_spectrum(probe, self.table, len(self.alphabet), (1,))).shape[1]

    def __call__(self, seqs: Sequence[str]) -> np.ndarray:
        """(n, dim) float32: the k-mer blocks, then the composition block."""
        table, size = self.table, len(self.alphabet)
        spec = kmer_spectrum(seqs, table, size, sorted(set(self.ks) | {1}))
        mono = spec[:, :size]
        keep = spec if 1 in self.ks else spec[:, size:]
        return np.concatenate([keep, self.composition(seqs, mono).astype(np.float32)], axis=1)


# featuriser name -> featuriser; an encoder spec names one (`featuriser: dna`)
FEATURISERS: dict[str, Featuriser] = {
    "dna": Featuriser(DNA_ALPHABET, (1, 2, 3, 4, 5, 6), dna_composition, aliases=(("U", "T"),)),
    "protein": Featuriser(PROTEIN_ALPHABET, (1, 2, 3), protein_composition, onehot=False),
    # tiny variants for fast tests
    "dna-tiny": Featuriser(DNA_ALPHABET, (1, 2, 3), dna_composition, aliases=(("U", "T"),)),
    "protein-tiny": Featuriser(PROTEIN_ALPHABET, (1, 2), protein_composition, onehot=False),
}


def get_featuriser(name: str) -> Featuriser:
    """Look up a featuriser by its registry name."""
    if name not in FEATURISERS:
        raise KeyError(f"unknown featuriser '{name}': choose from {sorted(FEATURISERS)}")
    return FEATURISERS[name]


def onehot(seqs: Sequence[str], featuriser: Featuriser) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, alphabet, L) one-hot of right-padded sequences (unknown letters all zero) and the (n, L) length mask."""
    codes, owner, lengths = residue_codes(seqs, featuriser.table)
    longest = max(int(lengths.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    pos = np.arange(codes.shape[0]) - starts[owner]
    keep = codes >= 0
    out = torch.zeros(len(seqs), len(featuriser.alphabet), longest)
    out[owner[keep], codes[keep], pos[keep]] = 1.0
    mask = torch.arange(longest)[None] < torch.as_tensor(lengths)[:, None]
    return out, mask


class PositionalCNN(nn.Module):
    """One-hot → conv stem → dilated residual conv blocks: per-position features that keep motif positions."""

    def __init__(self, alphabet_size: int, channels: int = 64, blocks: int = 3, kernel: int = 9):
        super().__init__()
        self.stem = nn.Conv1d(alphabet_size, channels, kernel, padding=kernel // 2)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.BatchNorm1d(channels), nn.GELU(),
                          nn.Conv1d(channels, channels, 3, padding=2**i, dilation=2**i))
            for i in range(blocks)
        )  # fmt: skip
        self.channels = channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(n, A, L) one-hot and (n, L) mask → (n, L, C) features, zero at padding."""
        m = mask[:, None].to(x.dtype)
        h = self.stem(x) * m
        for block in self.blocks:
            h = (h + block(h)) * m
        return h.transpose(1, 2)


def mean_max_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(n, L, C) → (n, 2C): masked mean, then masked max."""
    m = mask.unsqueeze(-1).to(h.dtype)
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1)
    return torch.cat([mean, h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1).clamp(min=-1e4)], dim=1)


def task_identity(task: str, dim: int) -> torch.Tensor:
    """A fixed unit vector per task name (seeded by its CRC32), the same in every session."""
    g = torch.Generator().manual_seed(zlib.crc32(task.encode()))
    v = torch.randn(dim, generator=g)
    return v / v.norm()


class FeatureEncoder(nn.Module):
    """Sequence → spectrum tokens, positional tokens and one token per task head, for the projector to read.

    `spec` keys: featuriser, tokenizer, window, overlap (as for every encoder), hidden, spectrum_tokens,
    cnn ({channels, blocks, kernel, tokens} or absent), heads ({task: outputs}: 1 for a binary logit or a
    standardised regression value, the class count for class logits), and optionally head_format
    ("logits" or "probs"), regression (the regression heads, for "probs"), slots (head-token slot count) and
    routes ({task: head}: tasks whose questions cannot be told apart share one head). Every tensor is a
    parameter or a buffer, so the encoder saves and loads with the model's safetensors.
    """

    self_contained = True  # nothing to reload from a pretrained source: always saved with the model

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        self.featuriser = get_featuriser(spec["featuriser"])
        self.tokenizer = get_sequence_tokenizer(spec["tokenizer"])
        self.window, self.overlap = int(spec["window"]), int(spec["overlap"])
        hidden, dim = int(spec["hidden"]), self.featuriser.dim
        # identity on the standardised features: the point where gradient attribution takes its gradients
        self.feature_tap = nn.Identity()
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_scale", torch.ones(dim))
        self.spectrum_tokens = int(spec.get("spectrum_tokens", 1))
        self.spectrum = nn.Linear(dim, self.spectrum_tokens * hidden)
        cnn = spec.get("cnn") or {}
        self.cnn = (
            PositionalCNN(
                len(self.featuriser.alphabet), cnn.get("channels", 64), cnn.get("blocks", 3), cnn.get("kernel", 9)
            )
            if cnn else None
        )  # fmt: skip
        self.cnn_tokens = int(cnn.get("tokens", 2)) if cnn else 0
        self.positional = nn.Linear(self.cnn.channels, hidden) if self.cnn is not None else None
        pooled = 2 * self.cnn.channels if self.cnn is not None else 0
        self.register_buffer("positional_mean", torch.zeros(pooled))
        self.register_buffer("positional_scale", torch.ones(pooled))
        heads: dict[str, int] = dict(sorted((spec.get("heads") or {}).items()))
        self.head_input = dim + pooled
        self.heads = nn.ModuleDict({t: nn.Linear(self.head_input, n) for t, n in heads.items()})
        # "logits": raw head outputs from slot 0; "probs": class probabilities from slot 0 (a binary head as
        # [P(0), P(1)]) and a regression value in the last slot, so each slot means one thing for every task
        self.head_format = spec.get("head_format", "logits")
        if self.head_format not in HEAD_FORMATS:
            raise ValueError(f"head_format must be one of {HEAD_FORMATS}, not '{self.head_format}'")
        self.regression = set(spec.get("regression") or ())
        self.routes: dict[str, str] = dict(spec.get("routes") or {})  # task -> head shared by tasks asked alike
        self.slots = int(spec.get("slots") or self._min_slots(heads))
        if self.slots < self._min_slots(heads):
            raise ValueError(f"slots ({self.slots}) must hold the widest head ({self._min_slots(heads)})")
        if heads and hidden <= self.slots:
            raise ValueError(f"hidden ({hidden}) must exceed the widest head ({self.slots}) to hold a task identity")
        ids = torch.stack([task_identity(t, hidden - self.slots) for t in heads]) if heads else torch.zeros(0, hidden)
        self.register_buffer("task_ids", ids)
        # id → residue text; specials carry no residue, an unknown token breaks k-mers like N does
        unk = self.tokenizer.id(self.tokenizer.unk_token)
        self._text = ["N" if i == unk else "" if t.startswith("<") else t for i, t in enumerate(self.tokenizer.vocab)]

    def _min_slots(self, heads: dict[str, int]) -> int:
        """Slots a head token needs for these heads in this encoder's head format."""
        if self.head_format == "logits":
            return max(heads.values(), default=1)
        classes = [max(n, 2) for t, n in heads.items() if t not in self.regression]
        return max(classes, default=0) + (1 if self.regression & set(heads) else 0) or 1

    def slot_values(self, task: str, pred: torch.Tensor) -> torch.Tensor:
        """(n, slots) head-token slots of one head's (n, outputs) predictions, in this encoder's head format."""
        out = torch.zeros(pred.shape[0], self.slots, dtype=pred.dtype, device=pred.device)
        if self.head_format == "logits":
            out[:, : pred.shape[1]] = pred
        elif task in self.regression:
            out[:, -1] = pred[:, 0]
        elif pred.shape[1] == 1:
            p = torch.sigmoid(pred[:, 0])
            out[:, 0], out[:, 1] = 1 - p, p
        else:
            out[:, : pred.shape[1]] = pred.softmax(-1)
        return out

    @property
    def hidden_size(self) -> int:
        """Width of each output token."""
        return int(self.spec["hidden"])

    @property
    def num_tokens(self) -> int:
        """Output tokens per window: spectrum, positional, then one per task head."""
        return self.spectrum_tokens + self.cnn_tokens + len(self.heads)

    @property
    def tasks(self) -> list[str]:
        """Task names of the heads, in token order."""
        return list(self.heads)

    def route_index(self, task: str) -> int | None:
        """Position of a task's head token among one window's output tokens (None: no head for it)."""
        task = self.routes.get(task, task)
        if task not in self.heads:
            return None
        return self.spectrum_tokens + self.cnn_tokens + self.tasks.index(task)

    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[str]:
        """Residue text of each tokenized window (the feature encoder reads residues, not token ids)."""
        rows = zip(input_ids, attention_mask, strict=True)
        return ["".join(self._text[i] for i in row[m.bool()].tolist()) for row, m in rows]

    def standardised(self, residues: Sequence[str]) -> torch.Tensor:
        """(n, dim) featuriser output, standardised with the stored training statistics."""
        # features are computed in float32 by numpy; the model may run in another precision
        x = torch.from_numpy(self.featuriser(residues)).to(self.feature_mean.device, self.feature_mean.dtype)
        return self.feature_tap((x - self.feature_mean) / self.feature_scale)

    def residue_scores(self, residues: str, feature_scores: torch.Tensor) -> torch.Tensor:
        """Spread per-feature scores (one window's gradient × input) over the residues their k-mers cover.

        A k-mer frequency's score is shared equally by its occurrences and each occurrence's k residues;
        composition features and k-mers absent from the window have no position and are left out.
        """
        f = self.featuriser
        size = len(f.alphabet)
        codes = f.table[np.frombuffer(residues.encode("ascii", "replace"), dtype=np.uint8)]
        out = np.zeros(len(residues), dtype=np.float64)
        scores = feature_scores.detach().double().cpu().numpy()
        offset = 0  # the k-mer blocks come first, in increasing k
        for k in sorted(f.ks):
            n = len(residues) - k + 1
            if n > 0:
                windows = np.lib.stride_tricks.sliding_window_view(codes, k)
                valid = (windows >= 0).all(1)
                idx = (np.where(windows >= 0, windows, 0) * size ** np.arange(k - 1, -1, -1)).sum(1)
                counts = np.bincount(idx[valid], minlength=size**k)
                share = np.where(valid, scores[offset + idx] / np.maximum(counts[idx], 1) / k, 0.0)
                for j in range(k):
                    out[j : j + n] += share
            offset += size**k
        return torch.from_numpy(out)

    def positional_features(self, residues: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The CNN's (n, L, C) per-position features and their mask."""
        assert self.cnn is not None
        x, mask = onehot(residues, self.featuriser)
        dev = self.feature_mean.device
        return self.cnn(x.to(dev, self.feature_mean.dtype), mask.to(dev)), mask.to(dev)

    def _inputs(self, residues: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Head inputs (standardised features, then the CNN's standardised pooled features) and segment tokens."""
        x = self.standardised(residues)
        if self.cnn is None:
            return x, None
        h, mask = self.positional_features(residues)
        pooled = (mean_max_pool(h, mask) - self.positional_mean) / self.positional_scale
        return torch.cat([x, pooled], dim=1), segment_pool(h, mask, self.cnn_tokens)

    def head_inputs(self, residues: Sequence[str]) -> torch.Tensor:
        """What every task head reads: standardised features, then the CNN's standardised pooled features."""
        return self._inputs(residues)[0]

    def head_outputs(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per task: (n, outputs) logits or standardised regression values."""
        return {t: head(inputs) for t, head in self.heads.items()}

    def encode(self, residues: Sequence[str]) -> torch.Tensor:
        """(n, num_tokens, hidden) tokens of residue strings."""
        n, hidden = len(residues), self.hidden_size
        x, segments = self._inputs(residues)
        tokens = [self.spectrum(x[:, : self.feature_mean.shape[0]]).view(n, self.spectrum_tokens, hidden)]
        if segments is not None:
            tokens.append(self.positional(segments))
        if len(self.heads):
            out = torch.stack([self.slot_values(t, pred) for t, pred in self.head_outputs(x).items()], dim=1)
            tokens.append(torch.cat([self.task_ids.unsqueeze(0).expand(n, -1, -1), out], dim=2))
        return torch.cat(tokens, dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(windows, tokens) ids → (windows, num_tokens, hidden), like an encoder's hidden states."""
        return self.encode(self.decode(input_ids, attention_mask))

    def output_mask(self, content_mask: torch.Tensor) -> torch.Tensor:
        """Which output positions carry content: all of them."""
        return torch.ones(content_mask.shape[0], self.num_tokens, dtype=torch.bool, device=content_mask.device)

    def saved_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec that rebuilds this encoder's shapes from config.json alone (no init_from folder needed)."""
        return {k: v for k, v in self.spec.items() if k != "init_from"}


def save_feature_encoder(encoder: FeatureEncoder, folder: str | Path) -> None:
    """Write the encoder's spec (encoder.json) and tensors (encoder.safetensors) into a folder."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    (d / SPEC_FILE).write_text(json.dumps(encoder.saved_spec(encoder.spec), indent=2))
    save_file({k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}, str(d / WEIGHTS_FILE))


def load_feature_encoder(spec: dict[str, Any], load_weights: bool = True) -> FeatureEncoder:
    """A feature encoder from a spec; with `init_from`, shapes and tensors come from a `train-heads` folder."""
    folder = spec.get("init_from")
    if not folder:
        return FeatureEncoder(spec)
    d = Path(folder)
    if not (d / SPEC_FILE).exists():
        raise SeqChatInputError(f"'{d}' is not a feature-encoder folder (no {SPEC_FILE}): run seqchat train-heads")
    # the folder fixes every shape; the config sets how the processor tokenizes and windows sequences,
    # which the encoder must decode the same way
    saved = json.loads((d / SPEC_FILE).read_text())
    encoder = FeatureEncoder({**saved, **{k: spec[k] for k in ("tokenizer", "window", "overlap") if k in spec}})
    if load_weights:
        encoder.load_state_dict(load_file(str(d / WEIGHTS_FILE)))
    return encoder
