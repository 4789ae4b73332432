"""A user's own labelled sequences (CSV/TSV, FASTA with labels in headers, JSONL, or a Hugging Face dataset)
turned into a task of the same machinery: registry entry, templates, split rules, build.

Every malformed row is reported with one `SeqChatInputError` naming the file, the line or record and the fix.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

from seqchat.data import build
from seqchat.data.records import Example, Raw, stable_fraction
from seqchat.data.sources import LOADERS
from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import MODALITIES, guess_modality, iter_fasta_records, make_sequence
from seqchat.tasks.registry import TASKS, TaskSpec

USER_TASK_TYPES = ("binary", "multiclass", "regression")
_TRUE = {"1", "true", "yes", "positive", "pos"}
_FALSE = {"0", "false", "no", "negative", "neg"}
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".faa", ".ffn")


def parse_label(raw: Any, task_type: str, where: str) -> Any:
    """A label value for the task type, or an error naming where it came from."""
    text = str(raw).strip()
    if text == "" or raw is None:
        raise SeqChatInputError(f"{where}: the label is empty; every row needs a label")
    if task_type == "binary":
        if text.lower() in _TRUE:
            return 1
        if text.lower() in _FALSE:
            return 0
        raise SeqChatInputError(f"{where}: binary label '{text}' must be 0/1, yes/no, true/false or positive/negative")
    if task_type == "regression":
        try:
            value = float(text)
        except ValueError:
            raise SeqChatInputError(f"{where}: regression label '{text}' is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise SeqChatInputError(f"{where}: regression label '{text}' must be a finite number")
        return value
    return text


def _open(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise SeqChatInputError(f"data file '{path}' does not exist")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _base_suffix(path: Path) -> str:
    return Path(path.name[:-3]).suffix.lower() if path.suffix == ".gz" else path.suffix.lower()


RawRow = tuple[str, Any, str, str]  # sequence, label, where (file and line/record), identifier


def _finish(rows: list[RawRow], task_type: str, modality: str | None) -> list[Example]:
    """Validate every row with one modality for the file (given, or the most common guess)."""
    for seq, _, where, _ in rows:
        if not str(seq or "").strip():
            raise SeqChatInputError(f"{where}: the sequence is empty")
    if modality is None and rows:
        from collections import Counter

        modality = Counter(guess_modality(str(r[0])) for r in rows).most_common(1)[0][0]
    out = []
    for seq, label, where, ident in rows:
        try:
            clean = make_sequence(str(seq), modality or "dna", name=ident or "seq").residues
        except SeqChatInputError as e:
            raise SeqChatInputError(f"{where}: {e}") from None
        out.append(Example(clean, parse_label(label, task_type, where), {}, ident))
    return out


def read_table(path: Path, task_type: str, modality: str | None, sequence_col: str, label_col: str) -> list[Example]:
    """CSV or TSV with a header naming the sequence and label columns."""
    delim = "\t" if _base_suffix(path) == ".tsv" else ","
    with _open(path) as fh:
        reader = csv.reader(fh, delimiter=delim)
        header = next(reader, None)
        if not header:
            raise SeqChatInputError(
                f"{path}: the file is empty; it needs a header line with '{sequence_col}' and '{label_col}'"
            )
        header = [h.strip() for h in header]
        for col in (sequence_col, label_col):
            if col not in header:
                raise SeqChatInputError(
                    f"{path}, line 1: no column '{col}' in the header {header}; rename it or pass its name"
                )
        si, li = header.index(sequence_col), header.index(label_col)
        ni = header.index("name") if "name" in header else None
        out: list[RawRow] = []
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise SeqChatInputError(
                    f"{path}, line {lineno}: {len(row)} fields but the header has {len(header)}; "
                    f"check the separator ('{delim}') and quoting"
                )
            ident = row[ni].strip() if ni is not None else f"line{lineno}"
            out.append((row[si], row[li], f"{path}, line {lineno}", ident))
    return _finish(out, task_type, modality)


_LABEL_IN_HEADER = re.compile(r"(?:^|\s)label=(\S+)")


def read_labelled_fasta(path: Path, task_type: str, modality: str | None) -> list[Example]:
    """FASTA whose headers carry the label, as `label=VALUE` or as the last word (`>id VALUE`)."""
    out: list[RawRow] = []
    with _open(path) as fh:
        for i, (header, residues) in enumerate(iter_fasta_records(fh, str(path)), start=1):
            ident = header.split()[0]
            m = _LABEL_IN_HEADER.search(header)
            words = header.split()
            if m:
                label = m.group(1)
            elif len(words) >= 2:
                label = words[-1]
            else:
                raise SeqChatInputError(
                    f"{path}, record {i} ('{ident}'): no label in the header; write '>{ident} label=VALUE'"
                )
            out.append((residues, label, f"{path}, record {i} ('{ident}')", ident))
    return _finish(out, task_type, modality)


def read_jsonl(path: Path, task_type: str, modality: str | None, sequence_col: str, label_col: str) -> list[Example]:
    """JSON Lines, one object a line with the sequence and label fields."""
    out: list[RawRow] = []
    with _open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise SeqChatInputError(f"{path}, line {lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict) or sequence_col not in obj or label_col not in obj:
                raise SeqChatInputError(
                    f"{path}, line {lineno}: needs an object with '{sequence_col}' and '{label_col}'"
                )
            ident = str(obj.get("name") or obj.get("id") or f"line{lineno}")
            out.append((obj[sequence_col], obj[label_col], f"{path}, line {lineno}", ident))
    return _finish(out, task_type, modality)


def read_hf(
    spec: str, split: str, task_type: str, modality: str | None, sequence_col: str, label_col: str
) -> list[Example]:
    """`hf:owner/name[:config]` via the `datasets` package, when it is installed and a hub is reachable."""
    name, _, config = spec.removeprefix("hf:").partition(":")
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise SeqChatInputError(f"{spec}: reading Hugging Face datasets needs `pip install datasets`") from None
    try:
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # the hub's own errors vary (offline, not found, gated)
        raise SeqChatInputError(
            f"{spec}: could not load split '{split}' from the hub ({type(e).__name__}: {e})"
        ) from None
    out: list[RawRow] = []
    for i, row in enumerate(ds):
        if sequence_col not in row or label_col not in row:
            raise SeqChatInputError(
                f"{spec}, row {i}: needs columns '{sequence_col}' and '{label_col}', has {sorted(row)}"
            )
        ident = str(row.get("name") or f"row{i}")
        out.append((row[sequence_col], row[label_col], f"{spec} ({split}), row {i}", ident))
    return _finish(out, task_type, modality)


def read_user_examples(
    source: str | Path,
    task_type: str = "binary",
    modality: str | None = None,
    sequence_col: str = "sequence",
    label_col: str = "label",
    hf_split: str = "train",
) -> list[Example]:
    """Read labelled sequences from CSV/TSV, labelled FASTA, JSONL or `hf:owner/name[:config]`."""
    if task_type not in USER_TASK_TYPES:
        raise SeqChatInputError(
            f"task type '{task_type}' is not supported for user data: use one of {', '.join(USER_TASK_TYPES)}"
        )
    if modality is not None and modality not in MODALITIES:
        raise SeqChatInputError(f"unknown modality '{modality}': use one of {', '.join(MODALITIES)}")
    if isinstance(source, str) and source.startswith("hf:"):
        rows = read_hf(source, hf_split, task_type, modality, sequence_col, label_col)
    else:
        path = Path(source)
        suffix = _base_suffix(path)
        if suffix in (".csv", ".tsv"):
            rows = read_table(path, task_type, modality, sequence_col, label_col)
        elif suffix in _FASTA_SUFFIXES:
            rows = read_labelled_fasta(path, task_type, modality)
        elif suffix in (".jsonl", ".ndjson"):
            rows = read_jsonl(path, task_type, modality, sequence_col, label_col)
        else:
            raise SeqChatInputError(
                f"{path}: unknown file type '{suffix}'; use .csv, .tsv, .fasta/.fa, .jsonl (optionally .gz)"
            )
    if not rows:
        raise SeqChatInputError(f"{source}: no labelled sequences found")
    return rows


def load_user(
    root: Path,
    train: str,
    test: str | None,
    task_type: str,
    modality: str | None,
    test_fraction: float = 0.2,
    sequence_col: str = "sequence",
    label_col: str = "label",
) -> Raw:
    """Loader for registered user tasks: the test file, or a hash-chosen fraction of the train file."""
    kw = {"task_type": task_type, "modality": modality, "sequence_col": sequence_col, "label_col": label_col}
    rows = read_user_examples(train, **kw)
    if test is not None:
        test_rows = (
            read_user_examples(test, hf_split="test", **kw)
            if test.startswith("hf:")
            else read_user_examples(test, **kw)
        )
        return {"train": rows, "test": test_rows}
    out: Raw = {"train": [], "test": []}
    for ex in rows:
        out["test" if stable_fraction(ex.residues, train) < test_fraction else "train"].append(ex)
    return out


LOADERS["user"] = load_user


def register_user_task(
    name: str,
    train: str | Path,
    test: str | Path | None = None,
    task_type: str = "binary",
    modality: str | None = None,
    description: str = "",
    subject: str = "sequence",
    positive: str = "positive for the property",
    quantity: str = "value",
    property_name: str = "class",
    decimals: int = 2,
    sequence_col: str = "sequence",
    label_col: str = "label",
) -> TaskSpec:
    """Read, validate and register a user's task so that `build_dataset` and `load_split` can use it."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,60}", name):
        raise SeqChatInputError(f"task name '{name}' must start with a letter and use only letters, digits and '_'")
    if name in TASKS and TASKS[name].loader != "user":
        raise SeqChatInputError(f"task name '{name}' is already a built-in task; choose another")
    if task_type == "regression" and re.search(r"\d", quantity):
        raise SeqChatInputError(
            f"quantity '{quantity}' contains digits; answers must hold exactly one number, so drop them"
        )
    kw = {"task_type": task_type, "modality": modality, "sequence_col": sequence_col, "label_col": label_col}
    rows = read_user_examples(train, **kw)
    mod = modality or guess_modality(rows[0].residues)
    args = {"train": str(train), "test": None if test is None else str(test), **kw, "modality": mod}
    labels: dict[Any, str] = {}
    value_range = None
    if task_type == "binary":
        labels = {0: f"not {positive}", 1: positive}
    elif task_type == "multiclass":
        labels = {c: c for c in sorted({str(r.target) for r in rows})}
    else:
        vals = [float(r.target) for r in rows]
        value_range = (round(min(vals), decimals), round(max(vals), decimals))
    spec = TaskSpec(
        name=name,
        group="user",
        title=description or f"User task {name}",
        inputs=(mod,),
        task_type=task_type,
        templates=f"user_{task_type}",
        loader="user",
        loader_args=args,
        metrics={"binary": ("mcc", "f1", "accuracy"), "multiclass": ("accuracy", "f1_macro", "mcc")}.get(
            task_type, ("pearson", "spearman", "r2")
        ),
        split_rule=(
            "User test file is the test split" if test else "20% of the user file by sequence hash is the test split"
        )
        + "; valid: 5% of train by hash; test sequences removed from train and valid.",
        source=str(train),
        licence="user data",
        labels=labels,
        value_range=value_range,
        decimals=decimals,
        fills={"subject": subject, "positive_np": positive, "quantity": quantity, "property": property_name},
        tag_kind="Regression" if task_type == "regression" else "Classification",
    )
    TASKS[name] = spec

    # the global test set and cached splits depend on the registry
    build._raw.cache_clear()
    build.global_test_keys.cache_clear()
    build.task_splits.cache_clear()
    return spec
