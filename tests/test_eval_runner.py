"""The benchmark runner: subsamples, task scoring by hand, `seqchat eval` end to end, baselines and the report."""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from conftest import SHARED_DATA
from seqchat.cli import main
from seqchat.data.build import load_split
from seqchat.data.sampling import sample_examples
from seqchat.evaluation.benchmark import (
    TaskOutput,
    benchmark_tasks,
    load_run,
    run_benchmark,
    score_task,
    train_majority,
    train_mean,
)
from seqchat.tasks.predict import TaskPrediction

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not present")


def test_subsample_is_deterministic_stratified_and_seeded():
    full = load_split("promoter_300_tata", "test")
    a = sample_examples("promoter_300_tata", "test", 40, seed=0)
    assert [e.source_id for e in a] == [e.source_id for e in sample_examples("promoter_300_tata", "test", 40, seed=0)]
    assert [e.source_id for e in a] != [e.source_id for e in sample_examples("promoter_300_tata", "test", 40, seed=1)]
    assert len(a) == 40
    share = Counter(e.target for e in full)
    got = Counter(e.target for e in a)
    for k in share:  # each class gets its share of 40, rounded
        assert abs(got[k] - 40 * share[k] / len(full)) < 1
    # every class is present even when it is rare
    small = sample_examples("splice_sites_human", "test", 3, seed=0)
    assert sorted(e.target for e in small) == ["acceptor", "donor", "neither"]
    assert len(sample_examples("protein_gb1", "test", 7)) == 7
    assert len(sample_examples("enhancers", "test", None)) == len(load_split("enhancers", "test"))


def test_task_lists():
    assert "promoter_300_tata" in benchmark_tasks("all")
    assert benchmark_tasks("enhancers, protein_gb1") == ["enhancers", "protein_gb1"]
    with pytest.raises(Exception, match="unknown task"):
        benchmark_tasks("no_such_task")


def test_binary_scores_by_hand_with_an_unparsed_answer_counted_wrong():
    # truth 1 0 1 0, parsed 1 0 - 1 -> the unparsed one is the wrong class: TP1 TN1 FP1 FN1
    m = score_task("promoter_300_tata", [1, 0, 1, 0], [1, 0, None, 1])
    assert m["mcc"] == pytest.approx(0.0)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert (m["n"], m["n_unparsed"]) == (4, 1)


def test_auroc_from_probabilities_or_from_hard_labels():
    # pairs (positive > negative): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    m = score_task("polya_arabidopsis_thaliana", [0, 0, 1, 1], [0, 1, 1, 1], p_positive=[0.1, 0.4, 0.35, 0.8])
    assert m["auroc"] == pytest.approx(0.75) and m["auroc_from"] == "probabilities"
    # hard labels 0 1 1 0 (the unparsed positive is wrong): pairs 1>0 1, 1=1 1/2, 0=0 1/2, 0<1 0 -> 2/4
    m = score_task("polya_arabidopsis_thaliana", [0, 0, 1, 1], [0, 1, 1, None])
    assert m["auroc"] == pytest.approx(0.5) and m["auroc_from"] == "hard labels"


def test_multiclass_mcc_by_hand():
    # the unparsed answer takes the training majority class, "neither" (never the truth's opposite)
    assert train_majority("splice_sites_human") == "neither"
    # classes acceptor=0 donor=1 neither=2: true 1 0 2 2, predicted 1 2 2 1
    # c=2 correct of s=4; predicted counts (0,2,2), true counts (1,1,2)
    # MCC = (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)) = (8 - 6) / sqrt(8 * 10)
    m = score_task(
        "splice_sites_human", ["donor", "acceptor", "neither", "neither"], ["donor", None, "neither", "donor"]
    )
    assert m["mcc"] == pytest.approx(2 / np.sqrt(80))
    assert m["accuracy"] == pytest.approx(0.5)


def test_regression_fills_unparsed_with_the_training_mean():
    fill = train_mean("protein_gb1")
    m = score_task("protein_gb1", [1.0, 2.0, 3.0, 4.0], [1.5, None, 2.5, 4.5])
    expected = stats.pearsonr([1, 2, 3, 4], [1.5, fill, 2.5, 4.5]).statistic
    assert m["pearson"] == pytest.approx(expected)
    assert m["fill_value"] == pytest.approx(fill) and m["n_unparsed"] == 1


def test_ec_scores_by_hand():
    truths = [["1.1.1.1"], ["2.7.11.12", "3.1.1.1"]]
    m = score_task("protein_ec", truths, [("1.1.1.1",), None])
    # levels: example 1 predicts its 4 true levels; example 2 is unparsed (4 predicted levels, none right, 8 true)
    # hP = 4/8, hR = 4/12, hF = 2 hP hR / (hP + hR) = 0.4; exact match 1/2
    assert m["ec_hf1"] == pytest.approx(0.4)
    assert m["ec_exact_match"] == pytest.approx(0.5)
    # fmax over labels {1.1.1.1, 2.7.11.12, 3.1.1.1}: example 1 P=R=1, example 2 predicts nothing
    # (no precision term, recall 0) -> P 1, R 1/2, F 2/3
    assert m["fmax"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    import copy

    import torch

    from conftest import tiny_config
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_model")
    SeqChatForConditionalGeneration(tiny_config(), tokenizer=copy.deepcopy(tokenizer)).save_pretrained(d)
    return d


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_eval_end_to_end_writes_every_output(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["eval", "--model", str(tiny_model_dir), "--tasks", "promoter_300_tata,protein_gb1", "--max-per-task", "4",
            "--calibration-train", "6", "--max-new-tokens", "4", "--out", str(out), "--seed", "3"]  # fmt: skip
    assert main(argv) == 0
    run, rows = load_run(out)
    assert run["system"] == "seqchat" and run["seed"] == 3 and run["max_per_task"] == 4
    assert run["git_sha"] and run["data_version"].startswith("sha256:") and run["examples"] == 8
    assert run["examples_per_s"] > 0 and set(run["parse_failures"]) == {"promoter_300_tata", "protein_gb1"}
    assert run["config"]["model"] == str(tiny_model_dir) and "stratified" in run["sampling"]
    for f in ("metrics.csv", "results.md", "calibration.json", "plots/promoter_300_tata_confusion.png",
              "plots/promoter_300_tata_reliability.png", "plots/protein_gb1_scatter.png"):  # fmt: skip
        assert (out / f).is_file(), f
    binary = rows["promoter_300_tata"]["metrics"]
    for k in ("auroc_raw", "auroc_calibrated", "mcc_raw", "mcc_calibrated", "ece_raw", "ece_calibrated"):
        assert k in binary
    preds = _rows(out / "predictions" / "promoter_300_tata.csv")
    assert len(preds) == 4 and {"p_raw", "p_positive", "free_answer", "free_prediction"} <= set(preds[0])
    # score mode: the prediction is the calibrated most probable class, never unparsed
    assert binary["n_unparsed"] == 0 and binary["parse_rate"] == 1.0
    assert all(r["prediction"] == str(int(float(r["p_positive"]) > 0.5)) for r in preds)  # a tie goes to class 0
    assert binary["calibration_train_n"] == 6
    # the free answers are the second column: a parse failure takes the training majority class, whatever the truth
    failed = sum(r["free_prediction"] == "" for r in preds)
    fill = str(train_majority("promoter_300_tata"))
    right = sum((r["free_prediction"] or fill) == r["truth"] for r in preds)
    assert binary["free_n_unparsed"] == failed and binary["free_parse_rate"] == pytest.approx(1 - failed / 4)
    assert binary["free_accuracy"] == pytest.approx(right / 4)
    metrics = _rows(out / "metrics.csv")
    assert {(r["task"], r["metric"]) for r in metrics} >= {("promoter_300_tata", "mcc"), ("protein_gb1", "spearman")}
    # --resume keeps finished tasks untouched
    stamp = (out / "predictions" / "protein_gb1.csv").stat().st_mtime_ns
    assert main(argv + ["--resume"]) == 0
    assert (out / "predictions" / "protein_gb1.csv").stat().st_mtime_ns == stamp


def test_kmer_baseline_skips_tasks_it_cannot_do(tmp_path):
    out = tmp_path / "kmer"
    assert main(["baseline", "kmer", "--tasks", "enhancers,protein_ec", "--max-per-task", "30", "--max-train", "300",
                 "--out", str(out), "--no-plots"]) == 0  # fmt: skip
    run, rows = load_run(out)
    assert list(rows) == ["enhancers"] and run["config"]["skipped_tasks"] == ["protein_ec"]
    m = rows["enhancers"]["metrics"]
    assert m["n"] == 30 and m["n_unparsed"] == 0 and m["train_n"] == 300 and -1 <= m["mcc"] <= 1
    # --resume redoes a task stored with another subsample instead of mixing two
    assert main(["baseline", "kmer", "--tasks", "enhancers", "--max-per-task", "20", "--max-train", "300",
                 "--out", str(out), "--no-plots", "--resume"]) == 0  # fmt: skip
    assert load_run(out)[1]["enhancers"]["metrics"]["n"] == 20


def test_specialist_fits_its_training_examples():
    from seqchat.evaluation.specialist import SpecialistConfig, predict_specialist, train_specialist

    cfg = SpecialistConfig(
        encoders={"dna": {"source": "nt-tiny", "tokenizer": "nt_6mer", "window": 512, "overlap": 10},
                  "protein": {"source": "esm-tiny", "tokenizer": "esm_residue", "window": 1022, "overlap": 10}},
        max_steps=80, batch_size=8, lr_encoder=1e-3, lr_head=1e-2, epochs=2,
    )  # fmt: skip
    train = sample_examples("core_promoter_tata", "train", 16, seed=0)
    model, info = train_specialist("core_promoter_tata", train, cfg)
    assert info["steps"] == 4 and info["train_n"] == 16  # 2 epochs of 16 at batch 8
    cfg.epochs = 40
    model, info = train_specialist("core_promoter_tata", train, cfg)
    out = predict_specialist(model, "core_promoter_tata", train)
    acc = np.mean([p.prediction == e.target for p, e in zip(out.predictions, train, strict=True)])
    assert info["steps"] == 80 and acc >= 0.9
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0) for p in out.predictions)


def _oracle(task, examples):
    return TaskOutput([TaskPrediction(str(e.target), e.target) for e in examples])


def _flip_first(task, examples):
    preds = [TaskPrediction("", e.target) for e in examples]
    preds[0] = TaskPrediction("?", None, None, True)
    return TaskOutput(preds)


def _constant(task, examples):
    keys = [0, 1] if isinstance(examples[0].target, int) else sorted({e.target for e in examples})
    return TaskOutput([TaskPrediction("", keys[0]) for _ in examples])


def test_report_tables_intervals_and_ratio(tmp_path):
    from seqchat.evaluation.report import render_report, write_report

    tasks = ["enhancers", "promoter_300_tata"]
    run_benchmark("seqchat", _oracle, tasks, tmp_path / "seqchat", max_per_task=30, plots=False, command="test oracle")
    run_benchmark("specialist", _flip_first, tasks, tmp_path / "specialist", max_per_task=30, plots=False)
    text = render_report(tmp_path, "BENCH.md")
    for heading in ("## Summary", "## Runs", "## Per task", "## Published anchors", "## Calibration",
                    "## Parse failures", "## Configurations"):  # fmt: skip
        assert heading in text
    _, spec = load_run(tmp_path / "specialist")
    mean_spec = np.mean([spec[t]["metrics"]["mcc"] for t in tasks])
    assert f"Multitask ÷ specialist: **{1 / mean_spec:.2f}**" in text
    assert "| enhancers | binary | mcc | 1.000 [1.000, 1.000] |" in text  # the oracle: no spread at all
    assert "0.55 (Nucleotide Transformer; ChatNT Suppl. Table 2" in text  # the enhancers anchor
    assert "(1 unparsed)" in text and "`test oracle`" in text
    assert "| seqchat − specialist |" in text
    # a chance-level specialist (one class for everything): its interval holds 0, so no ratio is printed
    run_benchmark("specialist", _constant, tasks, tmp_path / "specialist", max_per_task=30, plots=False)
    text = render_report(tmp_path, "BENCH.md")
    assert "Multitask ÷ specialist: **not printed**" in text
    report = write_report(tmp_path, tmp_path / "docs" / "BENCH.md")
    doc = json.loads((report.parent / "benchmarks.json").read_text())
    assert doc["git_sha"] and doc["data_version"].startswith("sha256:") and doc["seed"] == 0
    entry = doc["systems"]["seqchat"]["tasks"]["enhancers"]
    assert entry["metric"] == "mcc" and entry["value"] == 1.0 and entry["ci95"] == [1.0, 1.0] and entry["n"] == 30
    assert entry["parse_rate"] == 1.0
    summary = doc["systems"]["specialist"]["summary"]["mean_mcc_classification"]
    assert summary == {"value": 0.0, "ci95": [0.0, 0.0], "n_tasks": 2}
    assert doc["ratio_seqchat_over_specialist"]["ratio"] is None
    assert doc["paired_differences"]["seqchat - specialist"]["value"] == 1.0
    with gzip.open(report.parent / "benchmark_predictions" / "seqchat.csv.gz", "rt") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60 and all(r["truth"] == r["prediction"] for r in rows)


def test_report_gene_section_lists_free_text_rows_and_embeds_the_gene_page(tmp_path):
    from seqchat.evaluation.report import render_report

    run_benchmark("seqchat", _oracle, ["gene_description"], tmp_path / "seqchat", max_per_task=3, plots=False)
    text = render_report(tmp_path, "BENCH.md", gene_json=tmp_path / "missing.json")
    assert "## Gene function (GeneChat, BioTalk)" in text
    # the oracle copies the truth: every BLEU, METEOR and ROUGE-L score is 1
    # (METEOR's fragment penalty keeps it just under)
    row = next(line for line in text.splitlines() if line.startswith("| seqchat (multitask) | 3 |"))
    values = [float(v) for v in row.strip("|").split("|")[2:]]
    assert values[:4] == [1.0, 1.0, 1.0, 1.0] and values[5] == 1.0 and values[4] > 0.9
    assert "pass that JSON to `seqchat report --gene-json`" in text


def _silent(task, examples):
    return TaskOutput([TaskPrediction("", "") for _ in examples])


def test_ablation_table_counts_trained_parameters_tokens_scores_and_paired_differences(tmp_path, make_model):
    from seqchat.evaluation.ablation import paired_difference, render_ablation

    arms = {"perceiver_lora": (make_model(lora={"r": 2, "alpha": 4}), _oracle),
            "mlp_pooled_frozen": (
                make_model(projector={"type": "mlp", "pool_windows": True}, freeze_encoders=True), _oracle
            ),
            "perceiver_frozen": (make_model(), _silent)}  # fmt: skip
    for name, (model, answers) in arms.items():
        model.save_pretrained(tmp_path / name / "final")
        log = [{"step": s, "loss": 2.0 + s, "elapsed_s": 1.5 * s} for s in (1, 2, 3)]
        (tmp_path / name / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        run_benchmark("seqchat", answers, ["gene_description"], tmp_path / name / "eval", max_per_task=3, plots=False)
    lines = render_ablation(tmp_path)
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in lines
        if line.startswith("|")
    }
    for name, (model, answers) in arms.items():
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        # projector (+ LoRA adapters, + unfrozen encoders); frozen decoder left out
        assert rows[name][3] == f"{trained:,}"
        assert rows[name][4:6] == ["3", "1.50"]  # steps, median s/step
        assert rows[name][8:12] == (["1.000"] * 4 if answers is _oracle else ["0.000"] * 4)  # BLEU-1..4
    assert rows["perceiver_lora"][2].startswith("LoRA r=2") and rows["mlp_pooled_frozen"][2] == "frozen"
    assert rows["perceiver_lora"][6] == "4"  # the perceiver's K queries
    # one vector per 60-nt window (overlap 6): ceil((n - 6) / 54) windows for an n-nt gene, median of the three
    genes = [len(e.residues) for e in sample_examples("gene_description", "test", 3, 0)]
    assert rows["mlp_pooled_frozen"][6] == str(int(np.median([math.ceil((n - 6) / 54) for n in genes])))
    # the oracle against silence: every paired difference is exactly +1 for BLEU-1, BLEU-4 and ROUGE-L
    lora = rows["LoRA − frozen decoder"]
    assert lora[1] == "3" and lora[2] == lora[3] == lora[5] == "+1.000 [+1.000, +1.000]"
    assert paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])[0] == 2.0
    lo, hi = paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])[1:]
    assert 1.0 <= lo < 2.0 < hi <= 3.0
