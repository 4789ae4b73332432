"""`seqchat data ...`: build the instruction datasets, print their data cards, list tasks, write corpora."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from seqchat.data.build import BuildConfig, build_dataset
from seqchat.data.corpora import write_corpus
from seqchat.data.examples import write_examples
from seqchat.data.userdata import register_user_task
from seqchat.errors import SeqChatInputError
from seqchat.tasks.registry import TASKS

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the `data` command with its sub-commands."""
    p = subparsers.add_parser("data", help="instruction datasets: build, stats, tasks, examples, corpus")
    sub = p.add_subparsers(dest="data_command", required=True)

    b = sub.add_parser("build", help="write JSONL conversations and data cards for every task")
    b.add_argument("--out", required=True, help="output directory")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--tasks", nargs="+", help="only these tasks (default: all registered)")
    b.add_argument(
        "--max-per-split", type=int, default=None, help="cap examples per task and split (seeded subsample)"
    )
    b.add_argument("--tag-fraction", type=float, default=0.3, help="share of training questions with a task tag")
    b.add_argument("--no-system-prompt", action="store_true")
    b.add_argument("--no-multi", action="store_true", help="single-sequence records only")
    b.add_argument("--user-task", action="append", default=[], metavar="YAML",
                   help="a user task spec (name, train, test, task_type, modality, ...); "
                   "builds only user tasks unless --tasks")
    b.set_defaults(func=cmd_build)

    s = sub.add_parser("stats", help="print the data cards of a build")
    s.add_argument("dir")
    s.add_argument("--tasks", nargs="+")
    s.set_defaults(func=cmd_stats)

    t = sub.add_parser("tasks", help="list the task registry")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tasks)

    e = sub.add_parser("examples", help="write a markdown page with rendered conversations per task")
    e.add_argument("--out", required=True)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=cmd_examples)

    c = sub.add_parser("corpus", help="write a pretraining corpus (FASTA) with no test-split sequence")
    c.add_argument("modality", choices=("dna", "rna", "protein"))
    c.add_argument("--out", required=True)
    c.add_argument("--max", type=int, default=None)
    c.set_defaults(func=cmd_corpus)


def _register_user_tasks(paths: list[str]) -> list[str]:
    names = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SeqChatInputError(f"user task spec '{p}' does not exist")
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise SeqChatInputError(f"{p}: not valid YAML ({e})") from None
        if not isinstance(spec, dict) or "name" not in spec or "train" not in spec:
            raise SeqChatInputError(f"{p}: needs at least 'name' and 'train' keys")
        base = path.parent
        for key in ("train", "test"):
            if spec.get(key) and not str(spec[key]).startswith("hf:") and not Path(spec[key]).is_absolute():
                spec[key] = str(base / spec[key])
        try:
            names.append(register_user_task(**spec).name)
        except TypeError as e:
            raise SeqChatInputError(f"{p}: {e}") from None
    return names


def cmd_build(args: argparse.Namespace) -> int:
    """Build the dataset."""
    user = _register_user_tasks(args.user_task)
    cfg = BuildConfig(
        seed=args.seed,
        tasks=args.tasks or (user or None),
        max_per_split=args.max_per_split,
        tag_fraction=args.tag_fraction,
        system_prompt=not args.no_system_prompt,
        multi=not args.no_multi,
    )
    t0 = time.time()
    manifest = build_dataset(args.out, cfg)
    total = sum(sum(v.values()) for v in manifest["records"].values())
    log.info(f"wrote {total} records for {len(manifest['tasks'])} tasks to {args.out} in {time.time() - t0:.1f} s")
    return 0


def format_card(card: dict[str, Any]) -> str:
    """A data card as readable text."""
    t = card["task"]
    lines = [f"== {t['name']}: {t['title']}",
             f"   group {t['group']} | {t['task_type']} | inputs {', '.join(t['inputs'])}"
             f" | metric {', '.join(t['metrics'])}"]
    if t["task_type"] == "regression":
        lines.append(f"   unit {t['unit']} | range {t['value_range']} | decimals {t['decimals']}")
    elif t["labels"]:
        lines.append("   labels " + "; ".join(f"{k} = {v}" for k, v in t["labels"].items()))
    lines.append(f"   source {t['source']} | licence {t['licence']}")
    lines.append(f"   split rule: {t['split_rule']}")
    if t["label_note"]:
        lines.append(f"   labels note: {t['label_note']}")
    lines.append(
        f"   source files {card['source_counts']} -> train from {card['train_from']}, valid from {card['valid_from']}"
    )
    if card["removed"]:
        lines.append(f"   removed {card['removed']}")
    if card.get("cleaned"):
        lines.append(f"   cleaned {card['cleaned']}")
    if card.get("extra_tests"):
        lines.append(f"   extra test sets {card['extra_tests']}")
    for split in ("train", "valid", "test"):
        ln = card["length"].get(split, {})
        lines.append(
            f"   {split:5s} n={card['counts'][split]:<6d} records={card['built_records'].get(split, {})} "
            f"balance={card['balance'][split]} length={ln}"
        )
    for split, by_role in card.get("length_by_role", {}).items():
        lines.append(f"   {split:5s} lengths by role: " + "; ".join(
            f"{role} {st.get('min')}-{st.get('max')} (median {st.get('median')})" for role, st in by_role.items()))
    tm = card["templates"]
    lines.append(
        f"   templates {tm['family']}: {tm['questions_train']} train / {tm['questions_test']} test questions, "
        f"answers {tm['answers']}, confidence {tm['confidence_candidates']}, "
        f"used {', '.join(f'{s} {len(v)}' for s, v in tm['used'].items())}"
    )
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the data cards of a build."""
    cards = Path(args.dir) / "cards"
    if not cards.is_dir():
        raise SeqChatInputError(f"'{args.dir}' has no cards/ folder: run `seqchat data build --out {args.dir}` first")
    manifest = Path(args.dir) / "manifest.json"
    order = (
        json.loads(manifest.read_text())["tasks"]
        if manifest.is_file()
        else sorted(p.stem for p in cards.glob("*.json"))
    )
    for name in args.tasks or order:
        f = cards / f"{name}.json"
        if not f.is_file():
            raise SeqChatInputError(f"no data card for task '{name}' in {cards}")
        print(format_card(json.loads(f.read_text(encoding="utf-8"))))
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        for kind in ("_multi_task", "_cross_modal"):
            if kind in m["records"]:
                print(f"== {kind}: {m['records'][kind]}")
        print(f"build took {m['seconds']} s with {m['config']}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """List the registry."""
    if args.json:
        print(json.dumps({n: {"group": t.group, "type": t.task_type, "inputs": t.inputs, "roles": t.roles,
                              "metrics": t.metrics} for n, t in TASKS.items()}, indent=1))
        return 0
    for n, t in TASKS.items():
        # a pair task shows its inputs as role:modality (the column names `seqchat predict --pairs` reads)
        inputs = "+".join(f"{r}:{m}" for r, m in zip(t.roles, t.inputs, strict=True)) if t.is_pair else t.modality
        print(f"{n:34s} {t.task_type:10s} {inputs:8s} {t.metric:9s} {t.title}")
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    """Write docs/data_examples.md."""
    n = write_examples(args.out, seed=args.seed)
    log.info(f"wrote {n} conversations to {args.out}")
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    """Write one pretraining corpus."""
    n = write_corpus(args.modality, args.out, args.max)
    log.info(f"wrote {n} {args.modality} sequences to {args.out}")
    return 0
