"""The conversation build on the real shared data (capped per task so CI stays fast)."""

from __future__ import annotations

import json
import re

import pytest

from seqchat.cli import main
from seqchat.data.build import SPLITS, BuildConfig, build_dataset, load_split, read_records
from seqchat.data.records import reverse_complement, seq_key
from seqchat.tasks import templates as T
from seqchat.tasks.registry import TASKS, get_task

pytestmark = pytest.mark.integration
BUILTIN = [n for n, t in TASKS.items() if t.group != "user"]
CAP = 12
NAME = re.compile(r"^[A-Za-z0-9_]+$")
REF = re.compile(r"@([A-Za-z0-9_]+)")
TAG = re.compile(r"^\[[A-Za-z]+: [a-z0-9_]+\] ")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    rc = main(["data", "build", "--out", str(out), "--max-per-split", str(CAP), "--seed", "7"])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def records(built):
    return {s: read_records(built, s) for s in SPLITS}


def test_every_task_file_and_card_written(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["tasks"] == BUILTIN
    for name in BUILTIN:
        card = json.loads((built / "cards" / f"{name}.json").read_text())
        assert card["task"]["metrics"] and card["task"]["split_rule"]
        for s in SPLITS:
            assert (built / s / f"{name}.jsonl").is_file()
            assert card["built_records"][s]["single"] == min(CAP, card["counts"][s])
            assert card["length"][s]["min"] > 0
        assert card["templates"]["used"]["test"] and all(":q:test:" in u for u in card["templates"]["used"]["test"])
        assert all(":q:train:" in u for u in card["templates"]["used"]["train"])


def test_record_schema_and_sequence_references(records):
    kinds = set()
    for split, recs in records.items():
        assert recs
        ids = [r["id"] for r in recs]
        assert len(set(ids)) == len(ids)
        for r in recs:
            kinds.add(r["kind"])
            assert r["split"] == split
            assert {"id", "task", "split", "messages", "sequences", "target", "task_type"} <= set(r)
            assert r["messages"][0]["role"] == "system" and r["messages"][-1]["role"] == "assistant"
            roles = [m["role"] for m in r["messages"][1:]]
            assert roles == ["user", "assistant"] * (len(roles) // 2)
            refs = {m for msg in r["messages"] for m in REF.findall(msg["content"])}
            assert refs == set(r["sequences"]), (r["id"], refs, set(r["sequences"]))
            for name, s in r["sequences"].items():
                assert NAME.match(name) and s["modality"] in ("dna", "rna", "protein") and s["residues"]
    assert {"single", "compare_binary", "compare_class", "compare_value", "rank", "follow_up", "multi_task",
            "cross_modal"} <= kinds


def _template_regex(template: str, values: dict[str, str], roles: tuple[str, ...] = ()) -> re.Pattern:
    """A template as an exact pattern: fills and metadata literal, only the sequence names (seq, pair roles) free."""
    out, pos = [], 0
    for m in re.finditer(r"\{([a-z_0-9]+)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append("@[A-Za-z0-9_]+" if m.group(1) in ("seq", *roles) else re.escape(values[m.group(1)]))
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$")


def test_no_test_question_template_in_training(records):
    """Every training question is checked against every test template of its task (and the reverse)."""
    checked = 0
    for split in SPLITS:
        for r in records[split]:
            if r["kind"] != "single":
                allowed = "test" if split == "test" else "train"
                qids = [t for t in r["template_ids"] if ":q:" in t or (t.startswith("multi:") and ":a:" not in t)]
                assert qids and all(f":{allowed}:" in t for t in qids), r["id"]
                continue
            t = get_task(r["task"])
            fam, values = T.family(t.templates), T.fill_values(t, r.get("meta"))
            q = TAG.sub("", r["messages"][1]["content"])
            test_re = [_template_regex(x, values, t.roles) for x in fam.questions_test]
            train_re = [_template_regex(x, values, t.roles) for x in fam.questions_train]
            forbidden, own = (train_re, test_re) if split == "test" else (test_re, train_re)
            assert not any(p.match(q) for p in forbidden), (split, q)
            assert any(p.match(q) for p in own), (split, q)
            checked += 1
    assert checked > 1000


def test_no_test_sequence_in_training_records(records):
    # pair tasks are screened by pair (one sequence may recur in other pairs): see test_data_pairs
    pair = {n for n, t in TASKS.items() if t.is_pair}
    test, test_pairs = set(), set()
    for r in records["test"]:
        keys = [seq_key(s["residues"]) for s in r["sequences"].values()]
        if r["task"] in pair:
            test_pairs.add(tuple(keys))
            continue
        for s in r["sequences"].values():
            k = seq_key(s["residues"])
            test |= {k, reverse_complement(k)} if s["modality"] == "dna" else {k}
    for split in ("train", "valid"):
        for r in records[split]:
            if r["task"] in pair:
                assert tuple(seq_key(s["residues"]) for s in r["sequences"].values()) not in test_pairs, r["id"]
                continue
            for s in r["sequences"].values():
                assert seq_key(s["residues"]) not in test, r["id"]


def test_answers_state_the_target(records):
    for r in records["train"] + records["test"]:
        if r["kind"] != "single":
            continue
        t = get_task(r["task"])
        answer = r["messages"][-1]["content"]
        if t.task_type == "regression":
            assert re.findall(r"-?\d+(?:\.\d+)?", answer) == [t.format_value(r["target"])], answer
        elif t.task_type == "multiclass":
            assert t.label_name(r["target"]) in answer
        elif t.task_type == "binary":
            fam = T.family(t.templates)
            key = T.BINARY_KEYS[r["target"]]
            values = T.fill_values(t, r.get("meta"))
            assert answer in {T.render(a, values) for a in fam.answers[key]}
        elif t.task_type == "multilabel":
            assert all(f"EC {ec}" in answer for ec in r["target"])


def test_task_tags_only_in_training_at_about_thirty_percent(records):
    singles = [r for r in records["train"] if r["kind"] == "single"]
    share = sum(bool(TAG.match(r["messages"][1]["content"])) for r in singles) / len(singles)
    assert 0.2 < share < 0.4
    assert not any(TAG.match(m["content"]) for r in records["test"] for m in r["messages"] if m["role"] == "user")


def test_build_matches_load_split_and_is_deterministic(tmp_path, built):
    pool = load_split("enhancer_types", "test", CAP, seed=7)
    recs = [r for r in read_records(built, "test", "enhancer_types") if r["kind"] == "single"]
    assert [next(iter(r["sequences"].values()))["residues"] for r in recs] == [e.residues for e in pool]
    cfg = BuildConfig(seed=7, tasks=["enhancer_types", "protein_stability"], max_per_split=CAP)
    build_dataset(tmp_path / "a", cfg)
    build_dataset(tmp_path / "b", cfg)
    build_dataset(tmp_path / "c", BuildConfig(seed=8, tasks=cfg.tasks, max_per_split=CAP))
    for s in SPLITS:
        for name in cfg.tasks:
            a = (tmp_path / "a" / s / f"{name}.jsonl").read_text()
            assert a == (tmp_path / "b" / s / f"{name}.jsonl").read_text()
            assert a == (built / s / f"{name}.jsonl").read_text()
    assert (
        (tmp_path / "a/train/enhancer_types.jsonl").read_text()
        != (tmp_path / "c/train/enhancer_types.jsonl").read_text()
    )


def test_options_without_system_prompt_tags_or_multi(tmp_path):
    build_dataset(tmp_path, BuildConfig(tasks=["protein_solubility"], max_per_split=5, system_prompt=False,
                                        tag_fraction=0.0, multi=False))
    recs = read_records(tmp_path, "train")
    assert recs and all(r["messages"][0]["role"] == "user" and r["kind"] == "single" for r in recs)
    assert not any(TAG.match(r["messages"][0]["content"]) for r in recs)


def test_stats_prints_every_card(built, capsys):
    assert main(["data", "stats", str(built)]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert f"== {name}:" in out
    assert "split rule:" in out and "templates" in out


def test_stats_on_a_missing_build_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path)]) == 2
    assert "run `seqchat data build" in capsys.readouterr().err



def _build(tmp_path, capsys, monkeypatch, *before, after=(), progress=None):
    """`seqchat [before] data build ... [after]` of one small task, in-process; returns (stdout, stderr)."""
    if progress is None:
        monkeypatch.delenv("SEQCHAT_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("SEQCHAT_PROGRESS", progress)
    out = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
    argv = [*before, "data", "build", "--out", str(out), "--tasks", "protein_solubility", "--max-per-split", "3",
            "--no-multi", *after]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_quiet_and_verbose_set_what_reaches_stderr(tmp_path, capsys, monkeypatch):
    out, err = _build(tmp_path, capsys, monkeypatch)
    assert out == ""  # status lines are log messages on stderr, not output
    assert re.search(r"^seqchat: protein_solubility: train \d+, valid \d+, test \d+$", err, re.M), err
    assert re.search(r"^seqchat: wrote \d+ records for 1 tasks to ", err, re.M) and "seqchat: debug:" not in err
    assert _build(tmp_path, capsys, monkeypatch, "--quiet") == ("", "")
    assert _build(tmp_path, capsys, monkeypatch, after=["-q"]) == ("", "")  # after the subcommand too
    out, err = _build(tmp_path, capsys, monkeypatch, "-v")
    assert "seqchat: debug: protein_solubility train: {'" in err and "seqchat: wrote " in err
    assert "seqchat: debug:" in _build(tmp_path, capsys, monkeypatch, after=["--verbose"])[1]


def test_progress_bar_forced_on_and_off_by_quiet(tmp_path, capsys, monkeypatch):
    err = _build(tmp_path, capsys, monkeypatch, progress="1")[1]
    assert "data build: 100%" in err and "1/1" in err
    assert "data build:" not in _build(tmp_path, capsys, monkeypatch)[1]  # captured stderr is not a terminal
    assert _build(tmp_path, capsys, monkeypatch, "--quiet", progress="1") == ("", "")
