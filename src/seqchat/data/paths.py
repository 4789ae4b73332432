"""Locate the shared real-data directory (read in place, never copied into the repository)."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from seqchat.errors import SeqChatInputError

ENV_VAR = "SEQCHAT_DATA_DIR"
_MARKER = "DATA.md"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    starts = [Path.cwd().resolve(), *here.parents]
    out: list[Path] = []
    for start in starts:
        for d in (start, *start.parents):
            out.append(d / "shared" / "data")
    return out


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The shared data directory: the argument, else $SEQCHAT_DATA_DIR, else `shared/data` beside an ancestor."""
    if explicit is not None or os.environ.get(ENV_VAR):
        p = Path(explicit if explicit is not None else os.environ[ENV_VAR]).expanduser()
        if not (p / _MARKER).is_file():
            raise SeqChatInputError(
                f"data directory '{p}' has no {_MARKER}: point {ENV_VAR} at the shared/data folder"
            )
        return p
    for p in _candidates():
        if (p / _MARKER).is_file():
            return p
    raise SeqChatInputError(
        f"cannot find the shared data directory (a 'shared/data' folder with {_MARKER} next to the repository "
        f"or the current directory): set {ENV_VAR}=/path/to/shared/data"
    )


def data_path(relative: str, root: str | os.PathLike | None = None) -> Path:
    """An existing file under the data directory, or a clear error naming it."""
    p = data_dir(root) / relative
    if not p.exists():
        raise SeqChatInputError(f"expected data file '{p}' is missing from the shared data directory")
    return p


@cache
def data_version(root: str | None = None) -> str:
    """A short hash of every file in the shared data directory (names and contents): the data version."""
    base = Path(root) if root else data_dir()
    h = hashlib.sha256()
    for p in sorted(q for q in base.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(base)).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return "sha256:" + h.hexdigest()[:16]
