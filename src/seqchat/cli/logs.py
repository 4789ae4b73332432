"""Where the command line's messages go: the `seqchat` logger hierarchy, on stderr, one short line each.

`seqchat -q/--quiet` shows warnings and errors only (and no progress bars), the default adds INFO (progress and
status: what was written where, per-task results), `-v/--verbose` adds DEBUG. A command's own output (an answer,
JSON, tables, listings) is printed to stdout and is not a log message.
"""

from __future__ import annotations

import argparse
import logging
import sys

PREFIX = {logging.DEBUG: "seqchat: debug: ", logging.INFO: "seqchat: ", logging.WARNING: "seqchat: warning: ",
          logging.ERROR: "seqchat: error: ", logging.CRITICAL: "seqchat: error: "}  # fmt: skip


class _Formatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        level = max((lv for lv in PREFIX if lv <= record.levelno), default=logging.DEBUG)
        return PREFIX[level] + record.getMessage()


class StderrHandler(logging.Handler):
    """Writes to the current sys.stderr (so pytest's capture sees it), above any progress bar being drawn."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            tqdm_std = sys.modules.get("tqdm.std")  # a bar can only be on screen if tqdm was imported
            if tqdm_std is not None:
                tqdm_std.tqdm.write(msg, file=sys.stderr)
            else:
                sys.stderr.write(msg + "\n")
            sys.stderr.flush()
        except Exception:  # logging's convention: a broken stream never raises into the caller
            self.handleError(record)


def configure_logging(level: int = logging.INFO) -> logging.Logger:
    """Send the `seqchat` loggers' records at `level` and above to stderr (replacing an earlier call's handler)."""
    logger = logging.getLogger("seqchat")
    for h in [h for h in logger.handlers if isinstance(h, StderrHandler)]:
        logger.removeHandler(h)
    handler = StderrHandler()
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # the command line owns stderr: no second copy through a root handler
    return logger


def add_log_options(parser: argparse.ArgumentParser, default: object = logging.INFO) -> None:
    """-q/--quiet and -v/--verbose, both setting `log_level` (after a subcommand: default SUPPRESS keeps the
    value given before it)."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", dest="log_level", action="store_const", const=logging.WARNING, default=default,
                   help="only warnings and errors on stderr, no progress bars")
    g.add_argument("-v", "--verbose", dest="log_level", action="store_const", const=logging.DEBUG, default=default,
                   help="also debug messages on stderr")


def add_log_options_to_subcommands(parser: argparse.ArgumentParser) -> None:
    """The same options after every subcommand, at every depth (`seqchat data build --quiet ...`)."""
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                add_log_options(sub, argparse.SUPPRESS)
                add_log_options_to_subcommands(sub)
