"""Nearest-neighbour (homology) transfer: copy the annotation of the most similar training sequence.

The baseline every function predictor must beat (GeneChat, BioTalk). For each test gene, the most
similar training gene is found by one of `NEIGHBOUR_SEARCH`:

- `protein_kmer`: cosine similarity of protein 3-mer counts;
- `dna_kmer`: cosine similarity of coding-DNA 6-mer counts (what a DNA-only method sees);
- `mmseqs`: the best-scoring MMseqs2 hit (`easy-search`, default sensitivity, E <= 10) of the
  protein against the training proteins; queries without a hit fall back to `protein_kmer`.

Its description or EC numbers become the prediction, scored with the project's metrics
(BLEU-1..4, METEOR, ROUGE-L; EC exact match and hierarchical precision / recall / F). For
descriptions the neighbour is taken from the same genome (a yeast SGD description and an E. coli
product name are written differently, and the question names the organism); for EC numbers from
every genome. `majority` predicts the most frequent training answer (per genome for descriptions).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.data.build import task_splits
from seqchat.data.paths import data_dir
from seqchat.data.sources.genes import ec_test_set, gene_records
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.metrics import evaluate_predictions

Search = Callable[[Sequence[str], Sequence[str]], np.ndarray]


def _kmer_search(k: int) -> Search:
    def search(queries: Sequence[str], refs: Sequence[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        vec = CountVectorizer(analyzer="char", ngram_range=(k, k), lowercase=False, dtype=np.float32)
        r = normalize(vec.fit_transform([s.upper() for s in refs]))
        q = normalize(vec.transform([s.upper() for s in queries]))
        best = np.empty(len(queries), dtype=np.int64)
        for start in range(0, len(queries), 256):
            sims = (q[start : start + 256] @ r.T).toarray()
            best[start : start + 256] = sims.argmax(axis=1)  # ties: the first training gene
        return best

    return search


def mmseqs_available() -> bool:
    """Whether the `mmseqs` binary (Debian package mmseqs2) is on the PATH."""
    return shutil.which("mmseqs") is not None


def mmseqs_search(
    queries: Sequence[str],
    refs: Sequence[str],
    fields: Sequence[str] = ("query", "target", "bits"),
    threads: int = 2,
) -> list[list[str]]:
    """MMseqs2 `easy-search` hits of protein queries against references (default sensitivity), as rows of `fields`.

    Queries and targets are written as their index in the input lists.
    """
    if not mmseqs_available():
        raise SeqChatInputError("mmseqs not found: install Debian's mmseqs2 (scripts/install.sh does)")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for name, seqs in (("q.fa", queries), ("r.fa", refs)):
            (t / name).write_text("".join(f">{i}\n{s}\n" for i, s in enumerate(seqs)))
        cmd = ["mmseqs", "easy-search", str(t / "q.fa"), str(t / "r.fa"), str(t / "hits.m8"), str(t / "tmp"),
               "--threads", str(threads), "-v", "1", "--format-output", ",".join(fields)]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        return [line.split("\t") for line in (t / "hits.m8").read_text().splitlines()]


def mmseqs_best_hits(queries: Sequence[str], refs: Sequence[str], threads: int = 2) -> np.ndarray:
    """Index of the best-bitscore MMseqs2 hit of each query among the references, -1 where none."""
    best = np.full(len(queries), -1, dtype=np.int64)
    score = np.full(len(queries), -np.inf)
    for q, r, bits in mmseqs_search(queries, refs, ("query", "target", "bits"), threads):
        qi, ri, b = int(q), int(r), float(bits)
        if b > score[qi] or (b == score[qi] and ri < best[qi]):
            best[qi], score[qi] = ri, b
    return best


def _mmseqs_search(queries: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    best = mmseqs_best_hits(queries, refs)
    missing = np.flatnonzero(best < 0)
    if missing.size:
        best[missing] = _kmer_search(3)([queries[i] for i in missing], refs)
    return best


@dataclass(frozen=True)
class SearchMethod:
    """A neighbour search and the residues it reads ('dna' or 'protein')."""

    modality: str
    search: Search


NEIGHBOUR_SEARCH: dict[str, SearchMethod] = {
    "protein_kmer": SearchMethod("protein", _kmer_search(3)),
    "dna_kmer": SearchMethod("dna", _kmer_search(6)),
    "mmseqs": SearchMethod("protein", _mmseqs_search),
}


@dataclass(frozen=True)
class Item:
    """One gene or protein: its residues by modality, its annotation and its group (neighbours come from the same
    group)."""

    residues: dict[str, str]
    target: Any
    group: str = ""
    subset: str = ""


def transfer_predictions(queries: Sequence[Item], refs: Sequence[Item], method: str) -> list[Any]:
    """The target of each query's nearest reference in its own group."""
    if method not in NEIGHBOUR_SEARCH:
        raise SeqChatInputError(
            f"unknown neighbour search '{method}': use one of {', '.join(NEIGHBOUR_SEARCH)}"
        )
    m = NEIGHBOUR_SEARCH[method]
    preds: list[Any] = [None] * len(queries)
    for group in sorted({q.group for q in queries}):
        qi = [i for i, q in enumerate(queries) if q.group == group]
        ri = [i for i, r in enumerate(refs) if r.group == group]
        if not ri:
            raise SeqChatInputError(f"no reference in group '{group}'")
        best = m.search(
            [queries[i].residues[m.modality] for i in qi], [refs[i].residues[m.modality] for i in ri]
        )
        for i, b in zip(qi, best, strict=True):
            preds[i] = refs[ri[int(b)]].target
    return preds


def majority_predictions(queries: Sequence[Item], refs: Sequence[Item]) -> list[Any]:
    """The most frequent reference target of each query's group (ties: the first seen)."""
    common = {}
    for group in {r.group for r in refs}:
        counts = Counter(_hashable(r.target) for r in refs if r.group == group)
        common[group] = counts.most_common(1)[0][0]
    return [_unhash(common[q.group]) for q in queries]


def _hashable(target: Any) -> Any:
    return tuple(target) if isinstance(target, list) else target


def _unhash(target: Any) -> Any:
    return list(target) if isinstance(target, tuple) else target


def score(preds: Sequence[Any], truths: Sequence[Any], kind: str) -> dict[str, Any]:
    """Metrics of predictions against truths: kind 'text' (BLEU/METEOR/ROUGE-L) or 'ec' (exact, hP/hR/hF)."""
    return evaluate_predictions(list(preds), list(truths), kind)


# ---------------------------------------------------------------------------------- the gene tasks


@dataclass(frozen=True)
class TransferTask:
    """How a task's examples become `Item`s and how they are scored."""

    kind: str  # metric kind: 'text' or 'ec'
    same_genome: bool  # neighbours must come from the query's genome
    genes: bool  # examples are genes (DNA and protein) rather than proteins


TRANSFER_TASKS: dict[str, TransferTask] = {
    "gene_description": TransferTask("text", same_genome=True, genes=True),
    "gene_ec": TransferTask("ec", same_genome=False, genes=True),
    "protein_ec": TransferTask("ec", same_genome=False, genes=False),
}


def task_items(task: str, split: str) -> list[Item]:
    """A task's examples as `Item`s; subsets: 'seen_ec' / 'novel_ec' for EC tasks, the genome for descriptions."""
    if task not in TRANSFER_TASKS:
        raise SeqChatInputError(f"no transfer baseline for '{task}': use one of {', '.join(TRANSFER_TASKS)}")
    spec = TRANSFER_TASKS[task]
    rows = task_splits(task).get(split)
    if not spec.genes:
        train_ecs = frozenset(e for ex in task_splits(task).train for e in ex.target)
        return [
            Item({"protein": ex.residues}, list(ex.target), "", ec_test_set(ex.target, train_ecs))
            for ex in rows
        ]
    protein = {r.uid: r.protein for r in gene_records(str(data_dir()))}
    return [
        Item(
            {"dna": ex.residues, "protein": protein[ex.source_id]},
            ex.target,
            ex.meta["genome"] if spec.same_genome else "",
            ex.meta.get("test_set", ex.meta["genome"]),
        )
        for ex in rows
    ]


def run_transfer(task: str, methods: Sequence[str]) -> dict[str, Any]:
    """Scores of each method (and `majority`) on a task's test split, overall and per subset."""
    queries, refs = task_items(task, "test"), task_items(task, "train")
    kind = TRANSFER_TASKS[task].kind
    truths = [q.target for q in queries]
    preds = {"majority": majority_predictions(queries, refs)}
    for m in methods:
        preds[m] = transfer_predictions(queries, refs, m)
    results: dict[str, Any] = {}
    for name, p in preds.items():
        results[name] = {"all": score(p, truths, kind)}
        for subset in sorted({q.subset for q in queries if q.subset}):
            idx = [i for i, q in enumerate(queries) if q.subset == subset]
            results[name][subset] = score([p[i] for i in idx], [truths[i] for i in idx], kind)
    return {"task": task, "kind": kind, "n_test": len(queries), "n_train": len(refs), "results": results,
            "predictions": preds}  # fmt: skip
