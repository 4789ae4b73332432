"""`seqchat gene-function transfer|retrieval|report`: homology-transfer baselines, embedding retrieval and the
gene-function page (see `seqchat.evaluation.gene_report`)."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.evaluation.gene_report import build_report, render_report
from seqchat.evaluation.homology import run_transfer
from seqchat.evaluation.retrieval import run_retrieval

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `gene-function` command with its sub-commands."""
    p = subparsers.add_parser("gene-function", help="gene-function baselines, embedding retrieval and report")
    sub = p.add_subparsers(dest="gene_command", required=True)

    t = sub.add_parser("transfer", help="nearest-neighbour transfer baseline on a task's test split")
    t.add_argument(
        "--task", default="gene_description", choices=("gene_description", "gene_ec", "protein_ec")
    )
    t.add_argument(
        "--methods", nargs="+", default=["protein_kmer", "dna_kmer"], help="protein_kmer, dna_kmer, mmseqs"
    )
    t.add_argument("--json", help="write the scores (and predictions) here")
    t.set_defaults(func=cmd_transfer)

    r = sub.add_parser("retrieval", help="kNN hierarchical precision and silhouette of embeddings by EC")
    r.add_argument("--set", default="gene_ec", choices=("gene_ec", "gene_ec_protein", "clean_ec"))
    r.add_argument(
        "--encoder",
        default="kmer",
        help="'kmer', a built-in encoder name, an HF encoder folder or a seqchat model folder",
    )
    r.add_argument("--device", default="cpu")
    r.add_argument("--json", help="write the scores here")
    r.set_defaults(func=cmd_retrieval)

    g = sub.add_parser("report", help="write the gene-function benchmark page (markdown)")
    g.add_argument("--out", default="docs/gene_function.md")
    g.add_argument("--json", help="also write every number (and the predictions) as JSON")
    g.add_argument(
        "--encoder",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="an encoder to score by retrieval (repeatable), e.g. pretrained=runs/pretrain/dna",
    )
    g.add_argument("--device", default="cpu")
    g.add_argument(
        "--encoder-sets",
        nargs="+",
        default=["gene_ec", "gene_ec_protein", "clean_ec"],
        help="retrieval sets the encoders are scored on (k-mers always run on all; encoders on CPU are slow)",
    )
    g.add_argument("--no-mmseqs", action="store_true", help="skip the MMseqs2 baseline and split check")
    g.add_argument(
        "--note",
        action="append",
        default=[],
        help="a sentence printed under the retrieval table (repeatable)",
    )
    g.add_argument("--from-json", help="re-render the page from a JSON written by --json (no recomputation)")
    g.set_defaults(func=cmd_report)


def _dump(obj: Any, path: str | None) -> None:
    text = json.dumps(obj, indent=1, default=_json_default)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    else:
        print(text)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return sorted(o)
    raise TypeError(type(o))


def cmd_transfer(args: argparse.Namespace) -> int:
    """Run the transfer baseline and print or write its scores."""
    res = run_transfer(args.task, args.methods)
    if not args.json:
        res.pop("predictions")
    _dump(res, args.json)
    return 0


def cmd_retrieval(args: argparse.Namespace) -> int:
    """Run one retrieval benchmark and print or write its scores."""
    _dump(
        {
            "set": args.set,
            "encoder": args.encoder,
            "scores": run_retrieval(args.set, args.encoder, args.device),
        },
        args.json,
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Compute every number (or read them from --from-json) and write the markdown page (and JSON)."""
    parts = ["seqchat gene-function report", "--out", args.out]
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        parts = res.get("command", parts)
    else:
        encoders = {}
        for item in args.encoder:
            label, _, path = item.partition("=")
            encoders[label if path else Path(label).name] = path or label
        res = build_report(
            encoders, args.device, not args.no_mmseqs, log.info, args.encoder_sets
        )
        parts += [a for item in args.encoder for a in ("--encoder", item)]
        parts += ["--encoder-sets", *args.encoder_sets] if args.encoder else []
        parts += [a for note in args.note for a in ("--note", note)]
        res["notes"] = list(args.note)
        parts += ["--no-mmseqs"] * args.no_mmseqs + (["--json", args.json] if args.json else [])
        res["command"] = parts
        if args.json:  # written before rendering, so the numbers survive a rendering problem
            _dump(res, args.json)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        render_report(res, " ".join(shlex.quote(p) if i else p for i, p in enumerate(parts)))
    )
    log.info(f"wrote {args.out}")
    return 0
