"""The `seqchat` command line: each subcommand lives in the module that owns the feature."""

from __future__ import annotations

import argparse
import importlib
import sys

from seqchat import __version__
from seqchat.errors import SeqChatInputError

# subcommand -> module exposing `register(subparsers)`; each registered parser sets `func`.
COMMANDS: dict[str, str] = {
    "ask": "seqchat.cli.chat",
    "chat": "seqchat.cli.chat",
    "predict": "seqchat.serving.predict",
    "serve": "seqchat.serving.server",
    "data": "seqchat.cli.data",
    "eval": "seqchat.cli.evaluation",
    "baseline": "seqchat.cli.evaluation",
    "report": "seqchat.cli.evaluation",
    "benchmark": "seqchat.cli.evaluation",
    "gene-function": "seqchat.evaluation.gene_report",
    "pretrain-encoder": "seqchat.training.builders",
    "train": "seqchat.training.builders",
    "train-heads": "seqchat.training.heads",
    "export": "seqchat.training.export",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="seqchat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"seqchat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SeqChatInputError as e:
        print(f"seqchat: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
