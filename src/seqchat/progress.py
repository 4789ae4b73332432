"""Progress bars for long loops (dataset builds, evaluations, training, batch prediction): tqdm on stderr.

A bar is drawn when stderr is a terminal, unless the `seqchat` logger is set above INFO (`seqchat --quiet`
does that; in Python, `logging.getLogger("seqchat").setLevel(logging.WARNING)`). The environment variable
SEQCHAT_PROGRESS=1 draws bars into a redirected stderr too (a log file), SEQCHAT_PROGRESS=0 never draws them;
--quiet wins over both.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

PROGRESS_ENV = "SEQCHAT_PROGRESS"


def bars_enabled() -> bool | None:
    """False: no bars; True: bars even into a pipe or file; None: bars only when stderr is a terminal."""
    if logging.getLogger("seqchat").level > logging.INFO:  # its own level: NOTSET (0) unless set
        return False
    env = os.environ.get(PROGRESS_ENV, "").strip()
    if env in ("0", "1"):
        return env == "1"
    return None


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar on stderr (`enabled=False`, --quiet or SEQCHAT_PROGRESS=0: a silent one with the same API)."""
    from tqdm.auto import tqdm  # imported on first use: commands that draw no bar start faster

    state = bars_enabled() if enabled else False
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=None if state is None else not state, **kwargs)
