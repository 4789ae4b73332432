"""`seqchat predict`: one task over every record of a FASTA file, streamed to a CSV that a rerun resumes.

A pair task (two sequences, one answer: `antibody_neutralization`, `rna_protein_interaction`,
`sirna_efficacy`) reads a CSV/TSV with the columns `id` and the task's two roles (e.g. `id,antibody,antigen`),
or two FASTA files in role order whose records are matched by id.

Classification tasks go through candidate scoring (class probabilities as columns, no text generated);
regression, multi-label and free-text tasks through generation and answer parsing
(`seqchat.tasks.predict.predict_task` does both). Records are read one chunk at a time and each chunk's rows
are appended and flushed, so memory stays flat however long the file is; a rerun skips the ids the output
already holds. A record that is not a valid sequence for the task is reported with its id and skipped.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import (
    Sequence,
    _open_text,
    checked_lines,
    guess_modality,
    iter_fasta_records,
    make_sequence,
)
from seqchat.progress import progress_bar
from seqchat.tasks.predict import MODES, predict_task
from seqchat.tasks.registry import CLASS_TYPES, get_task

log = logging.getLogger(__name__)


def resolved_mode(task_name: str, mode: str) -> str:
    """The inference mode `auto` stands for: scoring for class tasks, generation otherwise."""
    if mode not in MODES:
        raise SeqChatInputError(f"unknown mode '{mode}': use one of {', '.join(MODES)}")
    if mode == "auto":
        return "score" if get_task(task_name).task_type in CLASS_TYPES else "generate"
    return mode


def class_task(task: Any) -> str | None:
    """None, or the name of a binary/multi-class task (one clear error otherwise, before any model work)."""
    if task is None:
        return None
    if not isinstance(task, str):
        raise SeqChatInputError(f"task must be a task name (a string), got {type(task).__name__}")
    spec = get_task(task)
    if spec.task_type not in CLASS_TYPES:
        raise SeqChatInputError(
            f"task '{task}' is {spec.task_type}; class probabilities exist for binary and multi-class tasks"
        )
    return task


def prediction_columns(task_name: str, mode: str = "auto") -> list[str]:
    """CSV/DataFrame columns: id, prediction, label (class tasks), p_<class> (scoring), answer, parse_failed
    (generation)."""
    task = get_task(task_name)
    mode = resolved_mode(task_name, mode)
    cols = ["id", "prediction"]
    if task.task_type in CLASS_TYPES:
        cols.append("label")
    if mode == "score":
        cols += [f"p_{k}" for k in task.labels]
    cols.append("answer")
    if mode == "generate":
        cols.append("parse_failed")
    return cols


def task_sequence(task_name: str, residues: str, name: str, max_length: int, modality: str | None = None) -> Sequence:
    """Validate one input as a sequence of the task's modality, or the given one (one clear error if it is not)."""
    modality = modality or get_task(task_name).modality
    nucleotide = modality != "protein"
    if isinstance(residues, Sequence):
        if (residues.modality != "protein") != nucleotide:
            raise SeqChatInputError(
                f"sequence '{name}' is {residues.modality.upper()}, but task '{task_name}' reads {modality.upper()}"
            )
        residues = residues.residues
    elif not isinstance(residues, str):
        raise SeqChatInputError(
            f"sequence '{name}' must be a string of residues, got {type(residues).__name__}"
        )
    elif not nucleotide and guess_modality(residues) != "protein":
        # A, C, G, T and N are amino acids too, so only the letter mix tells DNA given to a protein task
        raise SeqChatInputError(
            f"sequence '{name}' holds only nucleotide letters (looks like {guess_modality(residues).upper()}), "
            f"but task '{task_name}' reads PROTEIN: pass the protein sequence (translate it first)"
        )
    try:
        return make_sequence(residues, modality, name, max_length)
    except SeqChatInputError as e:
        guessed = guess_modality(residues)
        # a clearly foreign sequence (a protein in a DNA task) gets a message about the task, not a letter;
        # a nucleotide sequence with one odd letter keeps the letter-level message
        foreign = guessed != "protein" or len(set(residues.upper()) - set("ACGTUN \n\r\t")) >= 3
        try:
            make_sequence(residues, guessed, name)
        except SeqChatInputError:
            foreign = False
        if not foreign:
            raise e from None
        raise SeqChatInputError(
            f"sequence '{name}' is {guessed.upper()}, but task '{task_name}' reads {modality.upper()}"
        ) from None


TaskInput = Sequence | tuple[Sequence, Sequence]


def task_input(task_name: str, item: Any, name: str, max_length: int) -> TaskInput:
    """Validate one input of a task: a sequence, or for a pair task its two sequences, given as a pair in role
    order or as a mapping role→sequence (e.g. {"antibody": ..., "antigen": ...})."""
    task = get_task(task_name)
    if not task.is_pair:
        return task_sequence(task_name, item, name, max_length)
    roles = " and ".join(task.roles)
    if isinstance(item, Mapping):
        missing = [r for r in task.roles if not item.get(r)]
        if missing:
            raise SeqChatInputError(
                f"'{name}' has no {' or '.join(missing)} sequence; task '{task_name}' reads {roles}"
            )
        item = tuple(item[r] for r in task.roles)
    if isinstance(item, (str, Sequence)) or not isinstance(item, Seq) or len(item) != 2:
        raise SeqChatInputError(f"task '{task_name}' reads pairs of sequences ({roles}); '{name}' is not a pair")
    out = []
    for role, modality, x in zip(task.roles, task.inputs, item, strict=True):
        if x is None or not str(getattr(x, "residues", x)).strip():
            raise SeqChatInputError(f"'{name}' has no {role} sequence; task '{task_name}' reads {roles}")
        out.append(task_sequence(task_name, x, f"{name} ({role})", max_length, modality))
    return out[0], out[1]


def task_sequences(
    task_name: str, sequences: Mapping[str, Any] | Iterable[Any], max_length: int
) -> tuple[list[str], list[TaskInput]]:
    """Ids and validated inputs from a mapping id→input or a list (Sequences keep their names); a pair task's
    input is a pair of sequences or a mapping role→sequence."""
    if isinstance(sequences, Mapping):
        items = list(sequences.items())
    else:
        items = [(s.name if isinstance(s, Sequence) else f"seq{i + 1}", s) for i, s in enumerate(sequences)]
    ids = [str(k) for k, _ in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SeqChatInputError(f"two sequences share the id '{dup}'; ids must be unique")
    return ids, [task_input(task_name, v, k, max_length) for k, v in items]


def prediction_rows(
    model: Any,
    task_name: str,
    ids: list[str],
    sequences: list[TaskInput],
    batch_size: int = 16,
    mode: str = "auto",
    question_index: int | None = None,
    max_new_tokens: int = 48,
    calibrator: Any = None,
) -> list[dict[str, Any]]:
    """Predict a task for validated sequences; one dict per sequence with the `prediction_columns` keys."""
    task = get_task(task_name)
    mode = resolved_mode(task_name, mode)
    preds = predict_task(
        model, task_name, sequences, mode=mode, question_index=question_index, batch_size=batch_size,
        max_new_tokens=max_new_tokens, calibrator=calibrator,
    )  # fmt: skip
    rows = []
    for i, p in zip(ids, preds, strict=True):
        value = p.prediction
        if isinstance(value, tuple):  # EC numbers
            value = ";".join(value)
        row: dict[str, Any] = {"id": i, "prediction": value}
        if task.task_type in CLASS_TYPES:
            row["label"] = task.labels.get(p.prediction) if p.prediction is not None else None
        if mode == "score":
            row.update({f"p_{k}": round(float(p.probabilities[k]), 6) for k in task.labels})
        row["answer"] = p.answer
        if mode == "generate":
            row["parse_failed"] = p.parse_failed
        rows.append(row)
    return rows


# ---- FASTA → CSV ------------------------------------------------------------------------------


@dataclass
class PredictSummary:
    """What a `predict_fasta` run did."""

    predicted: int = 0
    already_done: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        """Sequences predicted per second of this run."""
        return self.predicted / self.seconds if self.seconds > 0 else 0.0


def count_records(path: Path) -> int:
    with _open_text(path) as fh:
        return sum(1 for line in checked_lines(fh, str(path)) if line.startswith(">"))


def check_output(out: Path, columns: list[str]) -> None:
    """Refuse an --out that cannot be written, or that holds something other than an earlier run of this
    task, without touching it (run before the model loads)."""
    try:
        exists = out.exists()
    except (OSError, ValueError) as e:
        raise SeqChatInputError(f"--out '{str(out)[:200]}' is not a usable file name ({e})") from None
    if exists:
        if out.is_dir():
            raise SeqChatInputError(f"--out '{out}' is a directory; name a CSV file")
        if not os.access(out, os.W_OK):
            raise SeqChatInputError(f"--out '{out}' is not writable; choose another file or fix its permissions")
        _check_header(out, columns)
        return
    parent = out.parent
    while not parent.exists():  # the missing folders are made at write time
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise SeqChatInputError(f"--out '{out}' cannot be created: '{parent}' is not a writable folder")


def _check_header(out: Path, columns: list[str]) -> None:
    """Read-only: the file's first line must be this task's CSV header."""
    if out.stat().st_size == 0:
        return
    try:
        with open(out, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error):
        header = ["(not CSV text)"]
    if header is not None and header != columns:
        raise SeqChatInputError(
            f"'{out}' holds other columns ({', '.join(header[:6])}...) than this task writes "
            f"({', '.join(columns[:6])}...): it is not an earlier run of the same task; choose another --out"
        )


def _done_ids(out: Path, columns: list[str]) -> set[str]:
    """Ids already in an earlier run's output; a torn last line (killed mid-write) is cut off first."""
    if not out.exists() or out.stat().st_size == 0:
        return set()
    # only a file that is surely an earlier run of this task is ever modified
    _check_header(out, columns)
    with open(out, "rb+") as fh:
        data_end = fh.seek(0, 2)
        fh.seek(max(0, data_end - 1))
        if fh.read(1) != b"\n":
            fh.seek(0)
            content = fh.read()
            fh.truncate(content.rfind(b"\n") + 1)
    with open(out, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        return {row[0] for row in reader if row}


def _chunks(records: Iterator[tuple[str, TaskInput]], size: int) -> Iterator[list[tuple[str, TaskInput]]]:
    chunk: list[tuple[str, TaskInput]] = []
    for r in records:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_shard(num_shards: int, shard_index: int) -> None:
    """A shard index in [0, num_shards) of at least one shard."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise SeqChatInputError(
            f"--shard-index must be in 0..{num_shards - 1} and --num-shards at least 1 (got index {shard_index} "
            f"of {num_shards})"
        )


def predict_fasta(
    model: Any,
    task_name: str,
    fasta: str | Path,
    out: str | Path,
    **kwargs: Any,
) -> PredictSummary:
    """Predict a task for every record of a FASTA file into a CSV, resuming an earlier run's output
    (keyword arguments: those of `predict_records`)."""
    if get_task(task_name).is_pair:
        raise SeqChatInputError(f"task '{task_name}' reads pairs: {pair_input_hint(task_name)}")
    fasta = Path(fasta)
    total = count_records(fasta)
    with _open_text(fasta) as fh:
        records = ((h.split()[0], r) for h, r in iter_fasta_records(fh, str(fasta)))
        return predict_records(model, task_name, records, total, fasta.name, out, **kwargs)


def pair_input_hint(task_name: str) -> str:
    """How to give a pair task's inputs to `seqchat predict`."""
    a, b = get_task(task_name).roles
    return f"give a CSV with the columns id,{a},{b} (--pairs), or two FASTA files, {a}s then {b}s, with matching ids"


def _pair_table(path: Path, roles: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, str]]]:
    delim = "\t" if path.name.removesuffix(".gz").endswith(".tsv") else ","
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delim)
        header = [h.strip() for h in next(reader, [])]
        for col in ("id", *roles):
            if col not in header:
                raise SeqChatInputError(
                    f"{path}, line 1: no column '{col}' in the header {header}; it needs id,{','.join(roles)}"
                )
        cols = [header.index(c) for c in ("id", *roles)]
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise SeqChatInputError(f"{path}, line {lineno}: {len(row)} fields but the header has {len(header)}")
            yield row[cols[0]].strip(), (row[cols[1]], row[cols[2]])


def _pair_fastas(first: Path, second: Path) -> Iterator[tuple[str, tuple[str, str | None]]]:
    with _open_text(second) as fh:
        partners = {h.split()[0]: r for h, r in iter_fasta_records(fh, str(second))}
    with _open_text(first) as fh:
        for h, r in iter_fasta_records(fh, str(first)):
            yield h.split()[0], (r, partners.get(h.split()[0]))


def predict_pairs(
    model: Any,
    task_name: str,
    source: str | Path | Seq[str | Path],
    out: str | Path,
    **kwargs: Any,
) -> PredictSummary:
    """Predict a pair task for every row of a CSV/TSV (`id` and the two role columns) or every id of two FASTA
    files (role order; a record without a partner is skipped) into a CSV (keyword arguments: `predict_records`)."""
    task = get_task(task_name)
    if not task.is_pair:
        raise SeqChatInputError(f"task '{task_name}' reads one sequence per record: give one FASTA file")
    paths = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    for p in paths:
        if not p.is_file():
            raise SeqChatInputError(f"input file '{p}' does not exist")
    if len(paths) == 1 and paths[0].name.removesuffix(".gz").endswith((".csv", ".tsv")):
        with _open_text(paths[0]) as fh:
            total = max(0, sum(1 for line in fh if line.strip()) - 1)
        records: Iterator[tuple[str, Any]] = _pair_table(paths[0], task.roles)
    elif len(paths) == 2:
        total = count_records(paths[0])
        records = _pair_fastas(paths[0], paths[1])
    else:
        raise SeqChatInputError(f"task '{task_name}' reads pairs: {pair_input_hint(task_name)}")
    return predict_records(model, task_name, records, total, paths[0].name, out, **kwargs)


def predict_records(
    model: Any,
    task_name: str,
    records: Iterable[tuple[str, Any]],
    total: int,
    source_name: str,
    out: str | Path,
    *,
    batch_size: int = 16,
    chunk_size: int = 256,
    mode: str = "auto",
    question_index: int | None = None,
    max_new_tokens: int = 48,
    calibrator: Any = None,
    progress: bool = True,
    warn: Any = None,
    num_shards: int = 1,
    shard_index: int = 0,
) -> PredictSummary:
    """Predict a task for (id, input) records into a CSV, resuming an earlier run's output; an invalid input is
    reported with its id and skipped. With `num_shards` N, only the records at positions `shard_index` mod N
    are predicted, so N processes with their own --out split one input; their rows together are one run's."""
    check_shard(num_shards, shard_index)
    out = Path(out)
    columns = prediction_columns(task_name, mode)
    done = _done_ids(out, columns)
    summary = PredictSummary(already_done=len(done))
    warn = warn or log.warning  # the command line's log handler writes above the progress bar
    max_len = model.config.max_sequence_length
    seen: set[str] = set()
    own = len(range(shard_index, total, num_shards))  # this shard's share of the records
    bar = progress_bar(total=own, unit="seq", enabled=progress)

    def valid_records() -> Iterator[tuple[str, TaskInput]]:
        for position, (rid, raw) in enumerate(records):
            mine = position % num_shards == shard_index
            if not mine:
                # every shard reads every id, so a duplicate is skipped in whichever shard holds it
                seen.add(rid)
                continue
            if rid in seen:
                summary.skipped.append((rid, "duplicate id"))
                warn(f"record '{rid}' skipped: its id appears earlier in {source_name}")
                bar.update(1)
                continue
            seen.add(rid)
            if rid in done:
                bar.update(1)
                continue
            try:
                yield rid, task_input(task_name, raw, rid, max_len)
            except SeqChatInputError as e:
                summary.skipped.append((rid, str(e)))
                warn(f"record '{rid}' skipped: {e}")
                bar.update(1)

    t0 = time.perf_counter()
    new_file = not out.exists() or out.stat().st_size == 0
    out.parent.mkdir(parents=True, exist_ok=True)
    # the bar is closed on Ctrl-C too, so the message after it starts on a line of its own
    with bar, open(out, "a", newline="", encoding="utf-8") as dst:
        writer = csv.DictWriter(dst, fieldnames=columns)
        if new_file:
            writer.writeheader()
        for chunk in _chunks(valid_records(), chunk_size):
            ids, seqs = [c[0] for c in chunk], [c[1] for c in chunk]
            writer.writerows(
                prediction_rows(
                    model, task_name, ids, seqs, batch_size, mode, question_index, max_new_tokens, calibrator
                )
            )
            dst.flush()  # a killed run keeps every finished chunk
            # each record is read once, so cached encoder outputs would only grow memory
            model.encoder_cache.clear()
            summary.predicted += len(chunk)
            bar.update(len(chunk))
    summary.seconds = time.perf_counter() - t0
    return summary
