"""Embedding retrieval by EC number (BioTalk Tables 2-3): kNN hierarchical precision at k and silhouette.

Each test sequence (query) retrieves its k nearest training sequences (references) by cosine
distance; `knn_hierarchical_precision` scores the best of them by shared EC levels, and
`silhouette_by_ec` measures how well queries and references together group by EC number (cut to
the first level, the EC class, and to all four). Sets:

- `gene_ec`: coding DNA of the gene_ec test genes vs its training genes (queries also split into
  `seen_ec` and `novel_ec`, BioTalk Test-Sets I and II);
- `gene_ec_protein`: the same genes' proteins;
- `clean_ec`: CLEAN New-392 vs split10 proteins (the protein_ec task).

Embedders: `kmer` (k-mer frequency vectors, fitted on the references), or any sequence encoder:
a Hugging Face encoder folder (e.g. `runs/pretrain/dna`), a built-in encoder name (random
initialisation, a control), or a saved seqchat model folder, whose encoder is read without its
decoder, so "before vs after instruction tuning" is two paths. An encoder embeds a sequence as the
mean of its last hidden states over every content token of every window (special tokens left out).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqchat.data.build import task_splits
from seqchat.data.paths import data_dir
from seqchat.data.sources.genes import gene_records
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.baselines import kmer_features
from seqchat.evaluation.metrics import knn_hierarchical_precision, silhouette_by_ec
from seqchat.modeling.config import EncoderConfig, SeqChatConfig
from seqchat.modeling.encoders import BUILTIN_ENCODERS, SequenceEncoder, build_encoder_model
from seqchat.modeling.tokenization import split_windows

KS: tuple[int, ...] = (1, 3, 5)


class EncoderModalityError(SeqChatInputError):
    """The encoder at a path does not read this modality (a DNA encoder asked to embed proteins, say)."""


@dataclass(frozen=True)
class RetrievalSet:
    """Queries and references with their EC numbers; `groups` names a subset for each query."""

    name: str
    modality: str
    queries: list[str]
    query_ecs: list[list[str]]
    references: list[str]
    reference_ecs: list[list[str]]
    groups: list[str] = field(default_factory=list)


def _gene_set(modality: str) -> RetrievalSet:
    sp = task_splits("gene_ec")
    protein = {r.uid: r.protein for r in gene_records(str(data_dir()))}
    seq = (lambda ex: ex.residues) if modality == "dna" else (lambda ex: protein[ex.source_id])
    return RetrievalSet(
        name="gene_ec" if modality == "dna" else "gene_ec_protein",
        modality=modality,
        queries=[seq(ex) for ex in sp.test],
        query_ecs=[list(ex.target) for ex in sp.test],
        references=[seq(ex) for ex in sp.train],
        reference_ecs=[list(ex.target) for ex in sp.train],
        groups=[ex.meta["test_set"] for ex in sp.test],
    )


def _clean_set() -> RetrievalSet:
    sp = task_splits("protein_ec")
    return RetrievalSet(
        name="clean_ec",
        modality="protein",
        queries=[ex.residues for ex in sp.test],
        query_ecs=[list(ex.target) for ex in sp.test],
        references=[ex.residues for ex in sp.train],
        reference_ecs=[list(ex.target) for ex in sp.train],
    )


RETRIEVAL_SETS: dict[str, Callable[[], RetrievalSet]] = {
    "gene_ec": lambda: _gene_set("dna"),
    "gene_ec_protein": lambda: _gene_set("protein"),
    "clean_ec": _clean_set,
}

# ------------------------------------------------------------------------------------------- embedders

# k-mer sizes of the frequency embedding: dense widths 64+256+1024 (DNA) and 25+625 (protein)
KMER_SIZES: dict[str, tuple[int, ...]] = {"dna": (3, 4, 5), "protein": (1, 2)}


def kmer_embeddings(
    queries: Sequence[str], references: Sequence[str], modality: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-k frequency vectors (each block sums to 1) of queries and references, vocabulary from the references."""
    feats = kmer_features(KMER_SIZES[modality]).fit([s.upper() for s in references])
    dense = lambda xs: feats.transform([s.upper() for s in xs]).toarray().astype(np.float32)  # noqa: E731
    return dense(queries), dense(references)


# encoder defaults by modality, used for a bare Hugging Face folder (its config says nothing of tokens)
ENCODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "dna": {"tokenizer": "nt_6mer", "window": 512, "overlap": 10},
    "rna": {"tokenizer": "nt_6mer", "window": 512, "overlap": 10},
    "protein": {"tokenizer": "esm_residue", "window": 1022, "overlap": 10},
}


def _seqchat_encoder(folder: Path, modality: str):  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    cfg = SeqChatConfig.from_file(folder / "config.json")
    if modality not in cfg.modalities:
        raise EncoderModalityError(f"'{folder}' has no encoder for {modality}")
    name = cfg.modalities[modality]
    spec = cfg.encoders[name]
    if EncoderConfig.of(spec).kind != "hf":
        raise SeqChatInputError(
            f"'{folder}' reads {modality} through a '{spec['kind']}' encoder, not a transformer: pass a model folder "
            "or hub id with a transformer encoder (e.g. nt-small, esm-small)"
        )
    prefix = f"encoders.{name}.model."
    state = {}
    for f in sorted(folder.glob("model*.safetensors")):
        state.update({k[len(prefix) :]: v for k, v in load_file(str(f)).items() if k.startswith(prefix)})
    # weights saved in the folder (trained or built-in encoders) rebuild from its config; else from the source
    model = build_encoder_model(spec, load_weights=not state)
    if state:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "position_ids" not in k and "inv_freq" not in k]:
            raise SeqChatInputError(
                f"'{folder}': encoder weights do not fit its config ({(missing + unexpected)[:3]})"
            )
    return SequenceEncoder(model, spec["tokenizer"], int(spec["window"]), int(spec["overlap"]))


def load_sequence_encoder(path: str, modality: str, **overrides: Any):  # type: ignore[no-untyped-def]
    """A `SequenceEncoder` from a seqchat model folder, a Hugging Face encoder folder or a built-in encoder name."""
    folder = Path(path)
    if (folder / "config.json").is_file() and "encoders" in json.loads((folder / "config.json").read_text()):
        enc = _seqchat_encoder(folder, modality)
    elif path in BUILTIN_ENCODERS or (folder / "config.json").is_file():
        spec = {**ENCODER_DEFAULTS[modality], "source": path}
        if path in BUILTIN_ENCODERS:
            spec["tokenizer"] = BUILTIN_ENCODERS[path]["tokenizer"]
        spec.update({k: v for k, v in overrides.items() if v is not None})
        enc = SequenceEncoder(
            build_encoder_model(spec), spec["tokenizer"], int(spec["window"]), int(spec["overlap"])
        )
    else:
        raise SeqChatInputError(
            f"'{path}' is neither a model folder with config.json nor a built-in encoder name"
        )
    if enc.tokenizer.vocab_size != enc.model.config.vocab_size:
        raise EncoderModalityError(
            f"'{path}': encoder vocabulary {enc.model.config.vocab_size} does not match tokenizer "
            f"({enc.tokenizer.vocab_size}); is it a {modality} encoder?"
        )
    return enc.eval()


@torch.no_grad()
def encoder_embeddings(
    encoder: Any, residues: Sequence[str], batch_windows: int = 32, device: str = "cpu"
) -> np.ndarray:
    """Mean last hidden state over every content token of every window of each sequence."""
    encoder = encoder.to(device)
    tok = encoder.tokenizer
    special = torch.tensor(sorted(tok.special_ids))
    items = [
        (i, tok.encode(w))
        for i, s in enumerate(residues)
        for w in split_windows(s.upper(), encoder.window, encoder.overlap)
    ]
    # windows of similar length batched together waste little padding
    items.sort(key=lambda it: len(it[1]))
    sums = torch.zeros(len(residues), encoder.hidden_size, dtype=torch.float64)
    counts = torch.zeros(len(residues), dtype=torch.float64)
    for start in range(0, len(items), batch_windows):
        chunk = items[start : start + batch_windows]
        ids = torch.full((len(chunk), max(len(t) for _, t in chunk)), tok.pad_token_id, dtype=torch.long)
        for j, (_, t) in enumerate(chunk):
            ids[j, : len(t)] = torch.tensor(t)
        att = (ids != tok.pad_token_id).long()
        hidden = encoder(ids.to(device), att.to(device)).float().cpu()
        content = (~torch.isin(ids, special)).unsqueeze(-1).to(hidden.dtype)
        owner = torch.tensor([i for i, _ in chunk])
        sums.index_add_(0, owner, (hidden * content).sum(1).double())
        counts.index_add_(0, owner, content.sum((1, 2)).double())
    return (sums / counts.clamp(min=1).unsqueeze(1)).numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------- scoring


def retrieval_scores(
    query_emb: np.ndarray,
    query_ecs: Sequence,
    ref_emb: np.ndarray,
    ref_ecs: Sequence,
    ks: Sequence[int] = KS,
    silhouette: bool = True,
) -> dict[str, float]:
    """hP@k of queries against references, and silhouette of both together by EC class (level 1) and number
    (level 4)."""
    hp = knn_hierarchical_precision(
        query_emb, query_ecs, ks, reference_embeddings=ref_emb, reference_ec_numbers=ref_ecs
    )
    out: dict[str, float] = {f"hp@{k}": v for k, v in hp.items()}
    if silhouette:
        both, ecs = np.vstack([query_emb, ref_emb]), list(query_ecs) + list(ref_ecs)
        out["silhouette_class"] = silhouette_by_ec(both, ecs, level=1)
        out["silhouette_ec"] = silhouette_by_ec(both, ecs, level=4)
    out["n_queries"] = len(query_ecs)
    out["n_references"] = len(ref_ecs)
    return out


def embed_set(
    data: RetrievalSet, embedder: str, device: str = "cpu", **overrides: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Query and reference embeddings of a set by `kmer` or by the encoder at a path."""
    if embedder == "kmer":
        return kmer_embeddings(data.queries, data.references, data.modality)
    enc = load_sequence_encoder(embedder, data.modality, **overrides)
    return encoder_embeddings(enc, data.queries, device=device), encoder_embeddings(
        enc, data.references, device=device
    )


def run_retrieval(
    set_name: str, embedder: str = "kmer", device: str = "cpu", **overrides: Any
) -> dict[str, dict[str, float]]:
    """Scores of one embedder on one set: all queries, then each query group (seen_ec / novel_ec)."""
    if set_name not in RETRIEVAL_SETS:
        raise SeqChatInputError(f"unknown retrieval set '{set_name}': use one of {', '.join(RETRIEVAL_SETS)}")
    data = RETRIEVAL_SETS[set_name]()
    q, r = embed_set(data, embedder, device, **overrides)
    out = {"all": retrieval_scores(q, data.query_ecs, r, data.reference_ecs)}
    for group in sorted(set(data.groups)):
        idx = [i for i, g in enumerate(data.groups) if g == group]
        out[group] = retrieval_scores(
            q[idx], [data.query_ecs[i] for i in idx], r, data.reference_ecs, silhouette=False
        )
    return out
