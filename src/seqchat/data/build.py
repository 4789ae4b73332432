"""Turn the registered tasks into conversations (JSONL) and data cards, deterministically from a seed.

Layout of a build directory:
  {split}/{task}.jsonl        single-sequence records and same-task comparisons, rankings, follow-ups
  {split}/_multi_task.jsonl   several tasks asked in turn about one sequence
  {split}/_cross_modal.jsonl  one question each about two sequences of different modalities
  cards/{task}.json           data card per task;  manifest.json  build settings, counts and timing
"""

from __future__ import annotations

import json
import logging
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from seqchat.data.paths import data_dir
from seqchat.data.records import Example, seq_key
from seqchat.data.sources import LOADERS
from seqchat.data.sources.pairs import PAIR_LOADERS, pair_test_keys, resolve_pair_splits
from seqchat.data.splits import TaskSplits, resolve_splits, test_keys
from seqchat.errors import SeqChatInputError
from seqchat.progress import progress_bar
from seqchat.tasks import templates as T
from seqchat.tasks.registry import TASKS, TaskSpec, get_task

SPLITS = ("train", "valid", "test")
logger = logging.getLogger(__name__)
_NAME_OK = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_SINGLE_NAMES = ("seq", "seq1", "query", "x", "myseq", "input", "s1", "dna1", "sample")
_PAIR_NAMES = (
    ("a", "b", "c"), ("seq1", "seq2", "seq3"), ("x", "y", "z"), ("s1", "s2", "s3"), ("first", "second", "third")
)
# names a user might give the two sequences of a pair task, by role (the role itself is always one of them)
_ROLE_NAMES = {
    "antibody": ("ab", "mab", "bnab", "Ab1", "fv"),
    "antigen": ("env", "gp160", "Env", "virus", "strain"),
    "rna": ("ncrna", "transcript", "lnc1", "r1", "my_rna"),
    "protein": ("rbp", "prot", "p1", "binder", "my_protein"),
    "sirna": ("guide", "si1", "oligo", "siRNA", "antisense"),
    "target": ("mrna", "site", "window", "tgt", "transcript"),
}


# ------------------------------------------------------------------------------------------ split access


@cache
def _raw(task_name: str, root: str) -> dict[str, list[Example]]:
    spec = get_task(task_name)
    return {**LOADERS, **PAIR_LOADERS}[spec.loader](Path(root), **spec.loader_args)


def _scope(spec: TaskSpec) -> str:
    # user tasks are screened against each other only, so they build without the shared data
    return "user" if spec.loader == "user" else "builtin"


def _root_for(spec: TaskSpec) -> str:
    return "" if _scope(spec) == "user" else str(data_dir())


@cache
def global_test_keys(scope: str = "builtin") -> frozenset[str]:
    """Keys of every test sequence of every registered single-sequence task of a scope (DNA on both strands)."""
    keys: set[str] = set()
    for name, spec in TASKS.items():
        if _scope(spec) == scope and not spec.is_pair:
            keys |= test_keys(_raw(name, _root_for(spec))["test"], spec.modality)
    return frozenset(keys)


@cache
def global_test_pairs() -> frozenset[tuple[str, str]]:
    """Pair keys of every test pair of every registered pair task (screened out of other pair tasks' training)."""
    return frozenset(
        k for name, spec in TASKS.items() if spec.is_pair for k in pair_test_keys(task_splits(name, screen=False).test)
    )


@cache
def task_splits(task_name: str, screen: bool = True) -> TaskSplits:
    """The full train/valid/test examples of a task after all split rules (cached per process).

    Pair tasks follow the pair rules (`seqchat.data.sources.pairs`); `screen=False` skips their screening
    against other pair tasks' test pairs (used to collect those pairs)."""
    spec = get_task(task_name)
    raw = {k: [replace(e, meta=dict(e.meta)) for e in v] for k, v in _raw(task_name, _root_for(spec)).items()}
    if spec.is_pair:
        other = set(global_test_pairs()) if screen else set()
        return resolve_pair_splits(raw, spec.inputs, spec.loader, other_test_pairs=other)
    return resolve_splits(raw, spec.modality, salt=task_name, other_test_keys=set(global_test_keys(_scope(spec))))


def load_split(task_name: str, split: str, max_n: int | None = None, seed: int = 0) -> list[Example]:
    """Examples of one split in memory; with max_n, a seeded subsample (the same one `build` uses)."""
    rows = task_splits(task_name).get(split)
    if max_n is None or max_n >= len(rows):
        return list(rows)
    idx = sorted(random.Random(f"{seed}:{task_name}:{split}:sample").sample(range(len(rows)), max_n))
    return [rows[i] for i in idx]


# -------------------------------------------------------------------------------------------- records


@dataclass
class BuildConfig:
    """Settings of one build; every random choice derives from `seed`."""

    seed: int = 0
    tasks: list[str] | None = None
    max_per_split: int | None = None
    tag_fraction: float = 0.3
    system_prompt: bool = True
    multi: bool = True
    compare_fraction: float = 0.1
    rank_fraction: float = 0.05
    follow_up_fraction: float = 0.05
    multi_task_per_split: int = 3000
    cross_modal_per_split: int = 2000


@dataclass
class Conversation:
    """A record under construction."""

    task: str
    split: str
    kind: str
    task_type: str
    sequences: dict[str, dict[str, str]] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    target: Any = None
    template_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_seq(self, name: str, ex: Example | str, modality: str) -> str:
        """Attach a named sequence (an example's first sequence, or residues) and return its reference text."""
        self.sequences[name] = {"residues": ex if isinstance(ex, str) else ex.residues, "modality": modality}
        return T.seq_ref(name)

    def say(self, role: str, content: str) -> None:
        """Append one message."""
        self.messages.append({"role": role, "content": content})

    def to_json(self, rid: str) -> dict[str, Any]:
        """The JSONL record."""
        rec = {
            "id": rid,
            "task": self.task,
            "split": self.split,
            "kind": self.kind,
            "task_type": self.task_type,
            "messages": self.messages,
            "sequences": self.sequences,
            "target": self.target,
            "template_ids": self.template_ids,
        }
        rec.update(self.extra)
        return rec


def _single_name(rng: random.Random, ex: Example) -> str:
    if ex.source_id and _NAME_OK.match(ex.source_id) and rng.random() < 0.25:
        return ex.source_id
    return rng.choice(_SINGLE_NAMES)


def _pair_names(rng: random.Random, task: TaskSpec) -> list[str]:
    if rng.random() < 0.5:
        return list(rng.choice(_PAIR_NAMES)[:2])
    return [rng.choice((role, *_ROLE_NAMES.get(role, ()))) for role in task.roles]


def _qa(
    task: TaskSpec, ex: Example, name: str | list[str], split: str, rng: random.Random
) -> tuple[str, str, list[str]]:
    q, qi = T.render_question(task, name, split, rng, ex.meta)
    a, ai = T.render_answer(task, ex.target, rng, ex.meta)
    qset = "test" if split == "test" else "train"
    return q, a, [f"{task.templates}:q:{qset}:{qi}", f"{task.templates}:a:{ai}"]


def _start(cfg: BuildConfig, conv: Conversation) -> Conversation:
    if cfg.system_prompt:
        conv.say("system", T.system_prompt())
    return conv


def single_record(task: TaskSpec, ex: Example, split: str, rng: random.Random, cfg: BuildConfig) -> Conversation:
    """One question about one sequence (both sequences of a pair task), one answer."""
    conv = _start(cfg, Conversation(task.name, split, "single", task.task_type, extra={"meta": ex.meta}))
    names: str | list[str] = _pair_names(rng, task) if task.is_pair else _single_name(rng, ex)
    for n, residues, modality in zip(
        [names] if isinstance(names, str) else names, ex.sequences, task.inputs, strict=True
    ):
        conv.add_seq(n, residues, modality)
    q, a, tids = _qa(task, ex, names, split, rng)
    if split != "test" and rng.random() < cfg.tag_fraction:
        q = f"{T.task_tag(task)} {q}"
        tids.append("tag")
    conv.say("user", q)
    conv.say("assistant", a)
    conv.target, conv.template_ids = ex.target, tids
    return conv


def _group_key(task: TaskSpec, ex: Example) -> tuple[str, ...]:
    return tuple(ex.meta.get(k, "") for k in task.group_by)


def _pick_pair(
    rng: random.Random, xs: list[Example], ys: list[Example], task: TaskSpec
) -> tuple[Example, Example] | None:
    for _ in range(20):
        x, y = rng.choice(xs), rng.choice(ys)
        if x is not y and seq_key(x.residues) != seq_key(y.residues) and _group_key(task, x) == _group_key(task, y):
            return x, y
    return None


def _multi_template(kind: str, split: str, rng: random.Random) -> tuple[str, str]:
    temps = T.multi()[kind]["test" if split == "test" else "train"]
    i = rng.randrange(len(temps))
    return temps[i], f"multi:{kind}:{'test' if split == 'test' else 'train'}:{i}"


def _multi_answer(kind: str, rng: random.Random) -> tuple[str, str]:
    temps = T.multi()[kind]["answers"]
    i = rng.randrange(len(temps))
    return temps[i], f"multi:{kind}:a:{i}"


def compare_record(
    task: TaskSpec, pool: list[Example], split: str, rng: random.Random, cfg: BuildConfig
) -> Conversation | None:
    """Two sequences: which one has the positive class / the named class / the higher value."""
    names = rng.choice(_PAIR_NAMES)[:2]
    if task.task_type == "regression":
        gap = 0.1 * (statistics.pstdev([e.target for e in pool]) or 1.0)
        pair = None
        for _ in range(20):
            pair = _pick_pair(rng, pool, pool, task)
            if pair and abs(pair[0].target - pair[1].target) >= gap:
                break
            pair = None
        if pair is None:
            return None
        win, lose = sorted(pair, key=lambda e: -e.target)
        kind, label_fill = "compare_value", {"quantity": T.fill_values(task, win.meta)["quantity"]}
    elif task.task_type in ("binary", "multiclass"):
        cls = 1 if task.task_type == "binary" else rng.choice(sorted({e.target for e in pool}))
        pos = [e for e in pool if e.target == cls]
        neg = [e for e in pool if e.target != cls]
        pair = _pick_pair(rng, pos, neg, task) if pos and neg else None
        if pair is None:
            return None
        win, lose = pair
        if task.task_type == "binary":
            kind, label_fill = "compare_binary", {"positive_np": T.fill_values(task, win.meta)["positive_np"]}
        else:
            kind, label_fill = "compare_class", {"label": task.label_name(cls)}
    else:
        return None
    conv = _start(cfg, Conversation(task.name, split, kind, task.task_type))
    order = [win, lose] if rng.random() < 0.5 else [lose, win]
    refs = {id(ex): conv.add_seq(n, ex, task.modality) for n, ex in zip(names, order, strict=True)}
    qt, qid = _multi_template(kind, split, rng)
    conv.say("user", T.render(qt, {**label_fill, "a": refs[id(order[0])], "b": refs[id(order[1])]}))
    at, aid = _multi_answer(kind, rng)
    conv.say("assistant", T.render(at, {**label_fill, "winner": refs[id(win)], "loser": refs[id(lose)]}))
    conv.target = refs[id(win)][1:]
    conv.template_ids = [qid, aid]
    conv.extra["targets"] = {n: ex.target for n, ex in zip(names, order, strict=True)}
    return conv


def rank_record(
    task: TaskSpec, pool: list[Example], split: str, rng: random.Random, cfg: BuildConfig
) -> Conversation | None:
    """Three sequences of a regression task ranked from highest to lowest value."""
    gap = 0.1 * (statistics.pstdev([e.target for e in pool]) or 1.0)
    for _ in range(20):
        trio = rng.sample(pool, 3) if len(pool) >= 3 else []
        if not trio or len({_group_key(task, e) for e in trio}) != 1:
            continue
        vals = sorted(e.target for e in trio)
        if vals[1] - vals[0] >= gap and vals[2] - vals[1] >= gap and len({seq_key(e.residues) for e in trio}) == 3:
            break
    else:
        return None
    names = rng.choice(_PAIR_NAMES)
    conv = _start(cfg, Conversation(task.name, split, "rank", task.task_type))
    refs = [conv.add_seq(n, ex, task.modality) for n, ex in zip(names, trio, strict=True)]
    quantity = T.fill_values(task, trio[0].meta)["quantity"]
    qt, qid = _multi_template("rank", split, rng)
    conv.say("user", T.render(qt, {"quantity": quantity, "names": f"{refs[0]}, {refs[1]} and {refs[2]}"}))
    order = sorted(range(3), key=lambda i: -trio[i].target)
    at, aid = _multi_answer("rank", rng)
    conv.say("assistant", T.render(at, {"quantity": quantity, "ranking": ", ".join(refs[i] for i in order)}))
    conv.target = [names[i] for i in order]
    conv.template_ids = [qid, aid]
    conv.extra["targets"] = {names[i]: trio[i].target for i in range(3)}
    return conv


def follow_up_record(
    task: TaskSpec, pool: list[Example], split: str, rng: random.Random, cfg: BuildConfig
) -> Conversation | None:
    """Two turns: a question about one sequence, then 'and what about @b?'."""
    pair = _pick_pair(rng, pool, pool, task) if len(pool) >= 2 else None
    if pair is None:
        return None
    a, b = pair
    na, nb = rng.choice(_PAIR_NAMES)[:2]
    conv = _start(cfg, Conversation(task.name, split, "follow_up", task.task_type))
    conv.add_seq(na, a, task.modality)
    ref_b = conv.add_seq(nb, b, task.modality)
    q, ans, tids = _qa(task, a, na, split, rng)
    conv.say("user", q)
    conv.say("assistant", ans)
    ft, fid = _multi_template("follow_up", split, rng)
    conv.say("user", T.render(ft, {"b": ref_b}))
    ans_b, ai = T.render_answer(task, b.target, rng, b.meta)
    conv.say("assistant", ans_b)
    conv.target = [a.target, b.target]
    conv.template_ids = [*tids, fid, f"{task.templates}:a:{ai}"]
    return conv


def multi_task_record(
    items: list[tuple[TaskSpec, Example]], split: str, rng: random.Random, cfg: BuildConfig
) -> Conversation:
    """Several turns about one sequence, each turn a different task (or cell line) with a known label."""
    spec0, ex0 = items[0]
    conv = _start(cfg, Conversation("multi_task", split, "multi_task", "multi_turn"))
    name = _single_name(rng, ex0)
    conv.add_seq(name, ex0, spec0.modality)
    targets, tids = [], []
    for spec, ex in items:
        q, a, t = _qa(spec, ex, name, split, rng)
        conv.say("user", q)
        conv.say("assistant", a)
        targets.append(ex.target)
        tids += t
    conv.target, conv.template_ids = targets, tids
    conv.extra["tasks"] = [s.name for s, _ in items]
    return conv


def cross_modal_record(
    first: tuple[TaskSpec, Example], second: tuple[TaskSpec, Example], split: str, rng: random.Random, cfg: BuildConfig
) -> Conversation:
    """One user turn with two questions about two sequences of different modalities."""
    (s1, e1), (s2, e2) = first, second
    n1, n2 = rng.choice(_PAIR_NAMES)[:2]
    conv = _start(cfg, Conversation("cross_modal", split, "cross_modal", "multi_sequence"))
    conv.add_seq(n1, e1, s1.modality)
    conv.add_seq(n2, e2, s2.modality)
    q1, a1, t1 = _qa(s1, e1, n1, split, rng)
    q2, a2, t2 = _qa(s2, e2, n2, split, rng)
    qt, qid = _multi_template("joint", split, rng)
    at, aid = _multi_answer("joint", rng)
    conv.say("user", T.render(qt, {"q1": q1, "q2": q2}))
    conv.say("assistant", T.render(at, {"a1": a1, "a2": a2}))
    conv.target = [e1.target, e2.target]
    conv.template_ids = [*t1, *t2, qid, aid]
    conv.extra["tasks"] = [s1.name, s2.name]
    return conv


# ------------------------------------------------------------------------------------------ the build


def _rng(cfg: BuildConfig, *parts: str) -> random.Random:
    return random.Random(":".join([str(cfg.seed), *parts]))


def task_records(task: TaskSpec, split: str, cfg: BuildConfig) -> list[Conversation]:
    """All records of one task and split: singles, then comparisons, rankings and follow-ups."""
    pool = load_split(task.name, split, cfg.max_per_split, cfg.seed)
    rng = _rng(cfg, task.name, split)
    out = [single_record(task, ex, split, rng, cfg) for ex in pool]
    # comparisons, rankings and follow-ups are about one sequence at a time: not built for pair tasks
    if not cfg.multi or len(pool) < 3 or task.is_pair:
        return out
    plans = [(compare_record, cfg.compare_fraction), (follow_up_record, cfg.follow_up_fraction)]
    if task.task_type == "regression":
        plans.append((rank_record, cfg.rank_fraction))
    for make, frac in plans:
        for _ in range(max(1, round(frac * len(pool)))):
            rec = make(task, pool, split, rng, cfg)
            if rec is not None:
                out.append(rec)
    return out


def multi_task_records(names: list[str], split: str, cfg: BuildConfig) -> list[Conversation]:
    """Conversations over sequences that carry labels from two or more tasks (or cell lines) in the same split."""
    index: dict[str, list[tuple[TaskSpec, Example]]] = defaultdict(list)
    for name in names:
        spec = get_task(name)
        if spec.is_pair:
            continue
        for ex in task_splits(name).get(split):
            index[seq_key(ex.residues)].append((spec, ex))
    rng = _rng(cfg, "multi_task", split)
    groups = []
    for key in sorted(index):
        items = index[key]
        distinct = {(s.name, _group_key(s, e)) for s, e in items}
        if len(distinct) >= 2 and len({s.modality for s, _ in items}) == 1:
            seen, uniq = set(), []
            for s, e in items:
                if (s.name, _group_key(s, e)) not in seen:
                    seen.add((s.name, _group_key(s, e)))
                    uniq.append((s, e))
            groups.append(uniq)
    cap = cfg.multi_task_per_split if cfg.max_per_split is None else min(cfg.multi_task_per_split, cfg.max_per_split)
    if split != "train":
        cap = max(1, cap // 5)
    # round-robin over task combinations so the most frequent pair does not crowd out the others
    by_combo: dict[tuple[str, ...], list] = defaultdict(list)
    for g in groups:
        by_combo[tuple(sorted({s.name for s, _ in g}))].append(g)
    queues = [rng.sample(v, len(v)) for _, v in sorted(by_combo.items())]
    chosen: list = []
    while queues and len(chosen) < cap:
        queues = [q for q in queues if q]
        for q in queues:
            if len(chosen) < cap and q:
                chosen.append(q.pop())
    out = []
    for items in chosen:
        rng.shuffle(items)
        out.append(multi_task_record(items[:3], split, rng, cfg))
    return out


def cross_modal_records(names: list[str], split: str, cfg: BuildConfig) -> list[Conversation]:
    """Two-question turns pairing a nucleotide task with a protein task."""
    single = [n for n in names if not get_task(n).is_pair and get_task(n).task_type != "free_text"]
    nuc = [n for n in single if get_task(n).modality != "protein"]
    prot = [n for n in single if get_task(n).modality == "protein"]
    if not nuc or not prot:
        return []
    rng = _rng(cfg, "cross_modal", split)
    cap = cfg.cross_modal_per_split if cfg.max_per_split is None else min(cfg.cross_modal_per_split, cfg.max_per_split)
    if split != "train":
        cap = max(1, cap // 5)
    pools = {n: load_split(n, split, cfg.max_per_split, cfg.seed) for n in nuc + prot}
    out = []
    for _ in range(cap):
        a = rng.choice(nuc)
        b = rng.choice(prot)
        if not pools[a] or not pools[b]:
            continue
        pair = [(get_task(a), rng.choice(pools[a])), (get_task(b), rng.choice(pools[b]))]
        if rng.random() < 0.5:
            pair.reverse()
        out.append(cross_modal_record(pair[0], pair[1], split, rng, cfg))
    return out


def _length_stats(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {}
    s = sorted(lengths)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {
        "min": s[0], "p5": pick(0.05), "median": pick(0.5), "mean": round(statistics.fmean(s), 1),
        "p95": pick(0.95), "max": s[-1],
    }


def _lengths(task: TaskSpec, rows: list[Example]) -> dict[str, Any]:
    return {role: _length_stats([len(e.sequences[i]) for e in rows]) for i, role in enumerate(task.roles)}


def _balance(task: TaskSpec, rows: list[Example]) -> dict[str, Any]:
    if task.task_type in ("binary", "multiclass"):
        c = Counter(str(e.target) for e in rows)
        return {task.label_name(k if task.task_type == "multiclass" else int(k)): c[k] for k in sorted(c)}
    if task.task_type == "regression":
        v = [float(e.target) for e in rows]
        return {"min": round(min(v), 4), "max": round(max(v), 4), "mean": round(statistics.fmean(v), 4),
                "std": round(statistics.pstdev(v), 4)} if v else {}
    if task.task_type == "multilabel":
        labels = Counter(t for e in rows for t in e.target)
        return {"distinct_labels": len(labels), "multi_label_examples": sum(len(e.target) > 1 for e in rows),
                "top": dict(labels.most_common(5))}
    return {"mean_words": round(statistics.fmean(len(str(e.target).split()) for e in rows), 1)} if rows else {}


def task_card(task: TaskSpec, built: dict[str, Counter], used: dict[str, set[str]]) -> dict[str, Any]:
    """The data card of one task: source, rules, counts per split, balance, lengths and templates."""
    splits = task_splits(task.name)
    fam = T.family(task.templates)
    spec = asdict(task)
    spec["labels"] = {str(k): v for k, v in task.labels.items()}
    return {
        "task": spec,
        "source_counts": splits.report.source_counts,
        "train_from": splits.report.train_from,
        "valid_from": splits.report.valid_from,
        "removed": splits.report.removed,
        "cleaned": splits.report.cleaned,
        "counts": {s: len(splits.get(s)) for s in SPLITS},
        "extra_tests": {s: len(v) for s, v in splits.extra.items()},
        "balance": {s: _balance(task, splits.get(s)) for s in SPLITS},
        "length": {s: _length_stats([len(e.residues) for e in splits.get(s)]) for s in SPLITS},
        **({"length_by_role": {s: _lengths(task, splits.get(s)) for s in SPLITS}} if task.is_pair else {}),
        "built_records": {s: dict(built.get(s, Counter())) for s in SPLITS},
        "templates": {
            "family": task.templates,
            "questions_train": len(fam.questions_train),
            "questions_test": len(fam.questions_test),
            "answers": {k: len(v) for k, v in fam.answers.items()},
            "confidence_candidates": {k: len(v) for k, v in fam.confidence.items()},
            "used": {s: sorted(used.get(s, set())) for s in SPLITS},
        },
    }


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def build_dataset(out_dir: str | Path, cfg: BuildConfig | None = None, log: Any = None) -> dict[str, Any]:
    """Write every task's conversations, the data cards and a manifest; return the manifest. One line per task
    goes to `log` (default: this module's logger at INFO); a progress bar counts the tasks (`seqchat.progress`)."""
    cfg = cfg or BuildConfig()
    say = log or logger.info
    names = list(cfg.tasks or TASKS)
    for n in names:
        get_task(n)
    out = Path(out_dir)
    t0 = time.time()
    counts: dict[str, dict[str, int]] = {}
    kinds = ("_multi_task", "_cross_modal") if cfg.multi else ()
    bar = progress_bar(total=len(names) + len(kinds), desc="data build", unit="task")
    for name in names:
        bar.set_postfix_str(name)
        task = get_task(name)
        built: dict[str, Counter] = {}
        used: dict[str, set[str]] = {}
        for split in SPLITS:
            recs = task_records(task, split, cfg)
            built[split] = Counter(r.kind for r in recs)
            used[split] = {t for r in recs for t in r.template_ids if t.startswith(task.templates + ":q")}
            _write_jsonl(
                out / split / f"{name}.jsonl", (r.to_json(f"{name}/{split}/{i:06d}") for i, r in enumerate(recs))
            )
            logger.debug("%s %s: %s", name, split, dict(built[split]))
        card = task_card(task, built, used)
        (out / "cards").mkdir(parents=True, exist_ok=True)
        (out / "cards" / f"{name}.json").write_text(json.dumps(card, indent=1, ensure_ascii=False), encoding="utf-8")
        counts[name] = {s: sum(built[s].values()) for s in SPLITS}
        say(f"{name}: " + ", ".join(f"{s} {counts[name][s]}" for s in SPLITS))
        bar.update(1)
    makers = {"_multi_task": multi_task_records, "_cross_modal": cross_modal_records}
    for kind in kinds:
        bar.set_postfix_str(kind)
        counts[kind] = {}
        for split in SPLITS:
            recs = makers[kind](names, split, cfg)
            counts[kind][split] = _write_jsonl(
                out / split / f"{kind}.jsonl",
                (r.to_json(f"{kind[1:]}/{split}/{i:06d}") for i, r in enumerate(recs)),
            )
        say(f"{kind}: " + ", ".join(f"{s} {counts[kind][s]}" for s in SPLITS))
        bar.update(1)
    bar.close()
    manifest = {
        "config": asdict(cfg),
        "tasks": names,
        "records": counts,
        "seconds": round(time.time() - t0, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def read_records(build_dir: str | Path, split: str, task: str | None = None) -> list[dict[str, Any]]:
    """Records of one split of a build (one task's file, or all files of the split)."""
    d = Path(build_dir) / split
    if not d.is_dir():
        raise SeqChatInputError(f"'{build_dir}' has no {split}/ folder: is it a `seqchat data build` output?")
    files = [d / f"{task}.jsonl"] if task else sorted(d.glob("*.jsonl"))
    rows = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return rows
