"""Gradient × input attribution of an answer over the residues of the sequences it rests on.

ChatNT showed that answers rest on TATA boxes and splice dinucleotides by attributing them to the encoder's
input tokens; here the score of an input token is the dot product of its input embedding with the gradient
of the answer's log-likelihood with respect to that embedding. Token scores are then spread over the
residues each token covers (an NT 6-mer covers 6 nt) and averaged where windows overlap, so every residue of
every sequence gets one score; positive means the residue makes the answer more likely.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from seqchat.errors import SeqChatInputError
from seqchat.modeling.processor import IGNORE_INDEX, referenced_subset, sequence_key
from seqchat.modeling.sequences import Sequence, as_named_sequences
from seqchat.modeling.tokenization import split_windows, window_starts

# The backward pass holds every encoder window's activations at once (~0.85 GB per 20,000 nt with the
# shipped encoders), so one request may attribute at most this many residues in all.
MAX_ATTRIBUTION_RESIDUES = 10_000


@dataclass(frozen=True)
class Attribution:
    """Per-residue gradient × input scores of one sequence for one answer."""

    name: str
    modality: str
    scores: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; 4 significant digits keep a long track's JSON small."""
        return {"name": self.name, "modality": self.modality, "scores": [float(f"{x:.4g}") for x in self.scores]}


def _residue_spans(tokenizer: Any, residues: str) -> list[int]:
    """How many residues each content token of one window covers, in order."""
    return [len(t) for t in tokenizer.tokenize(residues)]


def _per_residue(
    seq: Sequence,
    token_scores: list[torch.Tensor],
    content: list[torch.Tensor],
    tokenizer: Any,
    window: int,
    overlap: int,
) -> list[float]:
    """Spread token scores of each window over residues and average the overlaps."""
    total = torch.zeros(len(seq), dtype=torch.float64)
    hits = torch.zeros(len(seq), dtype=torch.float64)
    starts = window_starts(len(seq), window, overlap)
    for start, text, scores, mask in zip(
        starts, split_windows(seq.residues, window, overlap), token_scores, content, strict=True
    ):
        pos = start
        for span, s in zip(_residue_spans(tokenizer, text), scores[mask].tolist(), strict=True):
            # a k-mer's score is shared by its k residues, so a sequence's total is the tokens' total
            total[pos : pos + span] += s / span
            hits[pos : pos + span] += 1
            pos += span
    return (total / hits.clamp(min=1)).tolist()


def _feature_residues(
    encoder: Any, seq: Sequence, window_scores: list[torch.Tensor], window: int, overlap: int
) -> list[float]:
    """A feature encoder's per-feature scores of each window spread over its residues, overlaps averaged."""
    total = torch.zeros(len(seq), dtype=torch.float64)
    hits = torch.zeros(len(seq), dtype=torch.float64)
    for start, text, scores in zip(window_starts(len(seq), window, overlap),
                                   split_windows(seq.residues, window, overlap),
                                   window_scores, strict=True):  # fmt: skip
        total[start : start + len(text)] += encoder.residue_scores(text, scores)
        hits[start : start + len(text)] += 1
    return (total / hits.clamp(min=1)).tolist()


def check_budget(named: Mapping[str, Sequence], max_residues: int = MAX_ATTRIBUTION_RESIDUES) -> None:
    """Refuse an attribution over more residues than the budget, naming the limit."""
    total = sum(len(s) for s in named.values())
    if total > max_residues:
        raise SeqChatInputError(
            f"attribution over {total} residues asked; the limit is {max_residues} residues per request: "
            "ask about fewer or shorter sequences, or drop attribution"
        )


def release_memory() -> None:
    """Hand freed activation memory back to the system (glibc keeps it in its arenas otherwise)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def attribute(
    model: Any,
    messages: list[dict[str, str]],
    answer: str,
    sequences: Mapping[str, Sequence | str],
    max_residues: int = MAX_ATTRIBUTION_RESIDUES,
) -> list[Attribution]:
    """Gradient × input scores per residue of each referenced sequence for `answer` to the last user turn."""
    pool = as_named_sequences(sequences)
    named = referenced_subset(messages, pool)
    check_budget(named, max_residues)
    try:
        return _attribute(model, messages, answer, named)
    finally:
        release_memory()


def _attribute(
    model: Any, messages: list[dict[str, str]], answer: str, named: dict[str, Sequence]
) -> list[Attribution]:
    proc = model.processor
    prompt = proc(messages, named, add_generation_prompt=True)
    batch = proc(list(messages) + [{"role": "assistant", "content": answer}], named)
    labels = batch["labels"].clone()
    # only the new answer is attributed, not earlier answers of the conversation
    labels[:, : prompt["input_ids"].shape[1]] = IGNORE_INDEX
    if not bool((labels != IGNORE_INDEX).any()):
        return []
    batch["labels"] = labels

    captured: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name in batch["sequence_inputs"]:
        encoder = model.encoders[name]
        # a feature encoder is attributed at its standardised k-mer features, any other at its token embeddings
        table = encoder.feature_tap if hasattr(encoder, "feature_tap") else encoder.model.embeddings.word_embeddings

        def hook(_module: Any, _inputs: Any, output: torch.Tensor, name: str = name) -> torch.Tensor:
            # a fresh leaf: its gradient exists whether or not the encoder weights are trainable
            leaf = output.detach().requires_grad_(True)
            captured.setdefault(name, []).append(leaf)  # long sequences run through in several chunks
            return leaf

        handles.append(table.register_forward_hook(hook))
    try:
        with torch.enable_grad():
            out = model.forward(batch)
            log_likelihood = -out["loss"] * out["num_tokens"]
            leaves = [(n, leaf) for n, chunks in captured.items() for leaf in chunks]
            grads = torch.autograd.grad(log_likelihood, [leaf for _, leaf in leaves], allow_unused=True)
    finally:
        for h in handles:
            h.remove()

    result: list[Attribution] = []
    by_key: dict[str, list[float]] = {}
    per_encoder: dict[str, list[torch.Tensor]] = {}
    for (enc, leaf), grad in zip(leaves, grads, strict=True):
        g = grad if grad is not None else torch.zeros_like(leaf)
        gx = g.mul(leaf.detach()).float().cpu()
        per_encoder.setdefault(enc, []).append(gx if hasattr(model.encoders[enc], "feature_tap") else gx.sum(-1))
    for enc, chunks in per_encoder.items():
        d = batch["sequence_inputs"][enc]
        spec = model.config.encoders[enc]
        token_scores = torch.cat(chunks)
        w2s, content = d["window_to_seq"], d["content_mask"]
        for local, key in enumerate(d["keys"]):
            seq = next(s for s in named.values() if sequence_key(enc, s.residues) == key)
            rows = (w2s == local).nonzero().flatten().tolist()
            if hasattr(model.encoders[enc], "feature_tap"):
                by_key[key] = _feature_residues(model.encoders[enc], seq, [token_scores[r] for r in rows],
                                                spec["window"], spec["overlap"])  # fmt: skip
                continue
            by_key[key] = _per_residue(
                seq, [token_scores[r] for r in rows], [content[r] for r in rows],
                model.encoders[enc].tokenizer, spec["window"], spec["overlap"],
            )  # fmt: skip
    for s in named.values():
        key = sequence_key(model.config.modalities[s.modality], s.residues)
        if key in by_key:
            result.append(Attribution(s.name, s.modality, by_key[key]))
    return result
