"""The `seqchat` command line: one table of commands; every argparse definition lives in this package.

Each module here registers its commands' parsers (`register(subparsers)`) and holds their handlers, which
call the library (modeling, tasks, data, training, evaluation, serving); nothing below `seqchat.cli` parses
arguments.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from types import ModuleType

from seqchat import __version__
from seqchat.cli import chat, data, evaluation, gene, serving, training
from seqchat.cli.logs import add_log_options, add_log_options_to_subcommands, configure_logging
from seqchat.errors import SeqChatInputError

log = logging.getLogger(__name__)

# command -> the module that defines its parser (`register(subparsers)`, which sets `func`) and its handler
COMMANDS: dict[str, ModuleType] = {
    "ask": chat,
    "chat": chat,
    "predict": serving,
    "serve": serving,
    "data": data,
    "eval": evaluation,
    "baseline": evaluation,
    "report": evaluation,
    "benchmark": evaluation,
    "gene-function": gene,
    "pretrain-encoder": training,
    "train": training,
    "train-heads": training,
    "export": training,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="seqchat", description="Chat about DNA, RNA and protein sequences.")
    parser.add_argument("--version", action="version", version=f"seqchat {__version__}")
    add_log_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in dict.fromkeys(COMMANDS.values()):
        module.register(sub)
    add_log_options_to_subcommands(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    log.debug("seqchat %s on Python %s; arguments %s", __version__, platform.python_version(),
              sys.argv[1:] if argv is None else argv)  # fmt: skip
    try:
        return int(args.func(args) or 0)
    except SeqChatInputError as e:
        print(f"seqchat: error: {e}", file=sys.stderr)
        return 2

