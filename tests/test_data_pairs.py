"""Pair tasks (two sequences, one answer): templates, the pair split and leakage rules, build -> processor -> model,
and prediction from a pair file."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys

import pytest
import torch

from seqchat.data.build import BuildConfig, Conversation, single_record
from seqchat.data.records import Example
from seqchat.data.sources.pairs import PAIR_CLEANING, pair_key, resolve_pair_splits
from seqchat.errors import SeqChatInputError
from seqchat.serving.predict import predict_fasta, predict_pairs, task_input
from seqchat.tasks import templates as T
from seqchat.tasks.answers import parse_prediction
from seqchat.tasks.predict import _prompts
from seqchat.tasks.registry import TASKS, get_task
from seqchat.training.instruct import record_inputs
from serving_fixtures import PROT, bot, model_dir  # noqa: F401

PAIR_TASKS = [n for n, t in TASKS.items() if t.is_pair]
AB = "EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKG"
ENV = "MRVKEKYQHLWRWGWRWGTMLLGMLMICSATEKLWVTVYYGVPVWKEATTTLFCASDAKAYDTEVHNVWATHACVPTDPNPQEVVLVNVTENFNMWKNDMVEQMHEDII"


def test_three_pair_tasks_registered_with_roles_and_metrics():
    assert PAIR_TASKS == ["antibody_neutralization", "rna_protein_interaction", "sirna_efficacy"]
    assert [get_task(n).inputs for n in PAIR_TASKS] == [("protein", "protein"), ("rna", "protein"), ("rna", "rna")]
    assert [get_task(n).metric for n in PAIR_TASKS] == ["mcc", "mcc", "pearson"]
    assert "spearman" in get_task("sirna_efficacy").metrics
    assert not any(t.is_pair for n, t in TASKS.items() if n not in PAIR_TASKS)


@pytest.mark.parametrize("name", PAIR_TASKS)
def test_templates_name_both_sequences_in_either_order(name):
    task = get_task(name)
    fam = T.family(task.templates)
    a, b = task.roles
    assert len(fam.questions_train) >= 20 and len(fam.questions_test) >= 5
    assert not set(fam.questions_train) & set(fam.questions_test)
    for q in fam.questions_train + fam.questions_test:
        assert q.count("{" + a + "}") == 1 and q.count("{" + b + "}") == 1, q
        assert "{seq}" not in q
    for qs in (fam.questions_train, fam.questions_test):
        first = {q.index("{" + a + "}") < q.index("{" + b + "}") for q in qs}
        assert first == {True, False}, f"{name}: both sequence orders needed"
    rng = random.Random(0)
    for split in ("train", "test"):
        for names in (["ab", "env"], ["env", "ab"]):
            q, _ = T.render_question(task, names, split, rng)
            assert "@ab" in q and "@env" in q and "{" not in q
    q = T.render_test_question(name, ["x1", "y2"], 0)
    assert q.index("@x1") != q.index("@y2")
    with pytest.raises(SeqChatInputError, match="two sequences"):
        T.render_test_question(name, "x1", 0)


def test_a_named_question_puts_each_sequence_in_its_role():
    task = get_task("antibody_neutralization")
    fam = T.family(task.templates)
    i = fam.questions_train.index("Would {antibody} neutralize {antigen}?")
    q = T.render(fam.questions_train[i], T.seq_values(task, ["ab", "env"]))
    assert q == "Would @ab neutralize @env?"
    i = fam.questions_train.index("Is {antigen} neutralized by {antibody}?")
    assert T.render(fam.questions_train[i], T.seq_values(task, ["ab", "env"])) == "Is @env neutralized by @ab?"


@pytest.mark.parametrize("name", ["antibody_neutralization", "rna_protein_interaction"])
def test_binary_pair_answers_are_read_back(name):
    canon = T.canonical_answers(name)
    assert {parse_prediction(name, canon[k]) for k in (0, 1)} == {0, 1}
    assert parse_prediction(name, canon[1]) == 1
    cand = T.confidence_candidates(name)
    assert len(cand[0]) == len(cand[1]) == 5
    assert all(parse_prediction(name, c) == k for k in (0, 1) for c in cand[k])


def test_sirna_answer_states_the_number():
    task = get_task("sirna_efficacy")
    a, _ = T.render_answer(task, 0.734, random.Random(1))
    assert parse_prediction("sirna_efficacy", a) == pytest.approx(0.73)


# ------------------------------------------------------------------------------------- split rules


def _ex(a: str, b: str, y: int, i: str = "") -> Example:
    return Example(a, y, {}, i, partner=b)


P = {k: "MKT" + k * 6 for k in "ABCDEFGHKL"}


def test_pair_leakage_rule_on_a_hand_made_case():
    raw = {
        "train": [_ex(P["A"], P["B"], 1), _ex(P["A"], P["C"], 0), _ex(P["A"], P["C"], 0), _ex(P["E"], P["F"], 1),
                  _ex(P["E"], P["F"], 0), _ex(P["K"], P["L"], 1), _ex(P["H"], "MKTJJJ", 1)],
        "valid": [_ex(P["A"], P["B"], 1), _ex(P["G"], P["H"], 0), _ex(P["A"], P["D"] + "W", 0)],
        "test": [_ex(P["A"], P["B"].lower(), 1, "leak"), _ex(P["B"], P["A"], 1, "swapped"),
                 _ex(P["A"], P["D"], 1, "shares A"),
                 _ex(P["G"], P["H"], 0, "gh"), _ex(P["G"], P["H"], 0, "gh again")],
        "test_seen": [_ex(P["A"], P["C"], 0), _ex(P["C"], P["D"], 1)],
    }  # fmt: skip
    other = {(P["K"], P["L"])}
    sp = resolve_pair_splits(raw, ("protein", "protein"), "none", other_test_pairs=other)
    # a test pair whose two sequences both occur together in train is leakage; one shared sequence is not
    assert [e.source_id for e in sp.test] == ["swapped", "shares A", "gh"]
    assert [pair_key(e) for e in sp.train] == [(P["A"], P["B"]), (P["A"], P["C"])]
    assert [pair_key(e) for e in sp.valid] == [(P["A"], P["D"] + "W")]
    assert [pair_key(e) for e in sp.get("test_seen")] == [(P["C"], P["D"])]
    assert sp.report.removed == {
        "train: invalid characters": 1,
        "valid: pair also in train": 1,
        "test: pair also in train": 1,
        "test_seen: pair also in train": 1,
        "train: pair with two different labels": 2,
        "train: repeated pair": 1,
        "test: repeated pair": 1,
        "valid: pair also in test": 1,
        "train: pair in another task's test": 1,
    }
    assert sp.report.source_counts == {"train": 7, "valid": 3, "test": 5, "test_seen": 2}
    with pytest.raises(SeqChatInputError, match="no valid split"):
        resolve_pair_splits({"train": [], "test": []}, ("protein", "protein"), "none")


def test_cleaning_rules_edit_and_count():
    raw = {
        "train": [_ex("CUAAUAUGUUAAUUGAUUU", "AAAUUGAAAGGAAUUGUAUAAAUCAAUUAACAUAUUAGCUGAGUUGXXXXXXXXXXX", 0.4)],
        "valid": [_ex("AAUAUGUUAAUUGAUUUAU", "UAAAAUUGAAAGGAAUUGUAUAAAUCAAUUAACAUAUUAGCUGAGUUGAUCGAUCGA", 0.5)],
        "test": [_ex("GGUAUGUUAAUUGAUUUAU", "XXXAAUUGAAAGGAAUUGUAUAAAUCAAUUAACAUAUUAGCUGAGUUGAUCGAUCGA", 0.9)],
    }
    sp = resolve_pair_splits(raw, ("rna", "rna"), "sirna")
    rule = PAIR_CLEANING["sirna"][0].text
    assert sp.report.cleaned == {f"train: {rule}": 1, f"test: {rule}": 1}
    assert sp.train[0].partner.endswith("GUUG" + "N" * 11) and sp.test[0].partner.startswith("NNNAAU")
    assert PAIR_CLEANING["rpi"][0].fix("ACGUTFIXN") == "ACGUUNNNN"
    assert PAIR_CLEANING["aan"][0].fix("EVQLXDIQMX") == "EVQLDIQM"


# ------------------------------------------------------------------------------ build -> model


def test_pair_record_survives_build_processor_model(make_model):
    task = get_task("antibody_neutralization")
    cfg = BuildConfig(seed=3)
    model = make_model()
    rng = random.Random(5)
    for split in ("train", "test"):
        conv = single_record(task, _ex(AB, ENV, 1), split, rng, cfg)
        assert isinstance(conv, Conversation)
        rec = json.loads(json.dumps(conv.to_json("x")))
        assert [s["residues"] for s in rec["sequences"].values()] == [AB, ENV]
        assert all(s["modality"] == "protein" for s in rec["sequences"].values())
        question = rec["messages"][1]["content"]
        assert all(f"@{n}" in question for n in rec["sequences"])
        messages, seqs = record_inputs(rec)
        batch = model.processor([messages], [seqs])
        out = model(batch)
        assert torch.isfinite(out["loss"])
        out["loss"].backward()


def test_predict_prompt_asks_about_both_roles():
    task = get_task("rna_protein_interaction")
    convs, seqs = _prompts(task, [("ACGUACGU", "MKTAYIAK")], [0], None, [2], "")
    q = convs[0][-1]["content"]
    assert "@rna" in q and "@protein" in q
    assert {n: (s.residues, s.modality) for n, s in seqs[0].items()} == {
        "rna": ("ACGUACGU", "rna"), "protein": ("MKTAYIAK", "protein")}
    with pytest.raises(SeqChatInputError, match="pairs of sequences"):
        _prompts(task, ["ACGUACGU"], [0], None, [0], "")


def test_task_input_validates_pairs():
    ab, env = task_input("antibody_neutralization", {"antibody": AB, "antigen": ENV}, "p1", 5000)
    assert (ab.residues, env.residues) == (AB, ENV)
    with pytest.raises(SeqChatInputError, match="'p1' has no antigen sequence"):
        task_input("antibody_neutralization", {"antibody": AB}, "p1", 5000)
    with pytest.raises(SeqChatInputError, match="not a pair"):
        task_input("antibody_neutralization", AB, "p1", 5000)
    with pytest.raises(SeqChatInputError, match=r"p1 \(antigen\)"):
        task_input("antibody_neutralization", (AB, ENV + "J1"), "p1", 5000)


def test_pair_predict_from_a_csv_and_from_two_fastas(bot, tmp_path):  # noqa: F811
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"id,antibody,antigen\np1,{AB},{ENV}\nbad,{AB},ENVJ9\np2,{PROT},{ENV[:60]}\n")
    out = tmp_path / "out.csv"
    s = predict_pairs(bot.model, "antibody_neutralization", pairs, out, progress=False, warn=lambda m: None)
    assert s.predicted == 2 and [i for i, _ in s.skipped] == ["bad"]
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["p1", "p2"]
    assert list(rows[0]) == ["id", "prediction", "label", "p_0", "p_1", "answer"]
    assert all(abs(float(r["p_0"]) + float(r["p_1"]) - 1) < 1e-4 for r in rows)
    assert {r["label"] for r in rows} <= {"neutralizing", "not neutralizing"}

    a, b = tmp_path / "ab.fa", tmp_path / "env.fa"
    a.write_text(f">p1\n{AB}\n>p2 second\n{PROT}\n>lonely\n{AB}\n")
    b.write_text(f">p2\n{ENV[:60]}\n>p1\n{ENV}\n")
    out2 = tmp_path / "out2.csv"
    s2 = predict_pairs(bot.model, "antibody_neutralization", [a, b], out2, progress=False, warn=lambda m: None)
    assert s2.predicted == 2 and [i for i, _ in s2.skipped] == ["lonely"]
    assert "no antigen sequence" in s2.skipped[0][1]
    # the same pairs give the same probabilities whichever file layout carried them
    assert [r["p_1"] for r in csv.DictReader(out2.open())] == [r["p_1"] for r in rows]
    with pytest.raises(SeqChatInputError, match="reads pairs"):
        predict_fasta(bot.model, "antibody_neutralization", a, tmp_path / "x.csv", progress=False)
    with pytest.raises(SeqChatInputError, match="no column 'antigen'"):
        bad = tmp_path / "bad.csv"
        bad.write_text(f"id,antibody,env\np1,{AB},{ENV}\n")
        predict_pairs(bot.model, "antibody_neutralization", bad, tmp_path / "y.csv", progress=False)


def test_predict_cli_takes_a_pair_csv(model_dir, tmp_path):  # noqa: F811
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"id,antibody,antigen\np1,{AB},{ENV}\n")
    out = tmp_path / "o.csv"
    run = lambda *a: subprocess.run([sys.executable, "-m", "seqchat.cli", "predict", "--task",  # noqa: E731
                                     "antibody_neutralization", "--out", str(out), "--model", str(model_dir), *a],
                                    capture_output=True, text=True, timeout=600)  # fmt: skip
    wrong = run("--fasta", str(pairs))
    assert wrong.returncode == 2 and "id,antibody,antigen" in wrong.stderr and "Traceback" not in wrong.stderr
    proc = run("--pairs", str(pairs), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in csv.DictReader(out.open())] == ["p1"]


def test_api_predict_and_chat_probabilities_for_a_pair(bot):  # noqa: F811
    df = bot.predict("antibody_neutralization", {"p1": {"antibody": AB, "antigen": ENV}, "p2": (PROT, ENV)})
    assert list(df.index) == ["p1", "p2"] and set(df["label"]) <= {"neutralizing", "not neutralizing"}
    ans = bot.ask("Would @antibody neutralize @env?", {"antibody": AB, "env": ENV}, max_new_tokens=2,
                  task="antibody_neutralization")  # fmt: skip
    assert ans.probabilities is not None
    assert ans.probabilities[1] == pytest.approx(float(df.loc["p1", "p_1"]), abs=1e-4)


@pytest.mark.integration
def test_real_pair_splits_match_the_documented_counts():
    """docs/data.md states these numbers; the rules must keep producing them from the shared data."""
    from seqchat.data.build import task_splits

    rpi = task_splits("rna_protein_interaction")
    assert rpi.report.removed["test: pair also in train"] == 92
    assert (len(rpi.train), len(rpi.valid), len(rpi.test)) == (4574, 596, 954)
    assert {k: len(v) for k, v in rpi.extra.items()} == {
        "rpi369": 668, "rpi488": 486, "rpi1807": 1010, "rpi2241": 4268
    }
    aan = task_splits("antibody_neutralization")
    assert (len(aan.train), len(aan.valid), len(aan.test), len(aan.get("test_seen"))) == (22341, 1241, 3301, 795)
    assert not {e.residues for e in aan.test} & {e.residues for e in aan.train}
    assert not any("X" in e.residues for e in aan.train + aan.test)
    sirna = task_splits("sirna_efficacy")
    assert sum(v for k, v in sirna.report.cleaned.items()) == 128 + 10 + 27
    assert all(len(e.partner) == 57 and set(e.partner) <= set("ACGUN") for e in sirna.train + sirna.valid + sirna.test)
