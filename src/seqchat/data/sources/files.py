"""Reading the shared data's files: gzipped or plain text, lines, CSV members of zip archives."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path


def open_text(path: Path) -> io.TextIOBase:
    """A text file, gzipped or not, as UTF-8 with newlines kept as written."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_lines(path: Path) -> Iterator[str]:
    """The lines of a text file (gzipped or not), line ends stripped."""
    with open_text(path) as fh:
        for line in fh:
            yield line.rstrip("\r\n")


def zip_csv(path: Path, member: str) -> list[dict[str, str]]:
    """The rows of one CSV member of a zip archive."""
    with zipfile.ZipFile(path) as z, z.open(member) as fh:
        return list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")))
