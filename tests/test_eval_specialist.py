"""The specialist baseline: early stopping on validation, the best checkpoint restored, the better kind chosen."""

from __future__ import annotations

import copy
import json
import random

import pytest
import torch

from conftest import SHARED_DATA
from seqchat.cli import main
from seqchat.data.records import Example
from seqchat.data.sampling import sample_examples
from seqchat.errors import SeqChatInputError
from seqchat.evaluation import specialist as S
from seqchat.evaluation.benchmark import load_run
from seqchat.evaluation.systems import kmer_system, primary_score
from seqchat.modeling.hub import shipped_model_dir

TINY = {"dna": {"source": "nt-tiny", "tokenizer": "nt_6mer", "window": 512, "overlap": 10},
        "protein": {"source": "esm-tiny", "tokenizer": "esm_residue", "window": 1022, "overlap": 10}}  # fmt: skip
TASK = "core_promoter_tata"  # any binary DNA task: the examples below are synthetic


def _synthetic(n: int, seed: int) -> list[Example]:
    """A trivially separable binary task: class 1 sequences are A/T rich, class 0 sequences G/C rich."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        y = i % 2
        alphabet = "AAAT" if y else "GGGC"
        out.append(Example("".join(rng.choice(alphabet) for _ in range(60)), y))
    return out


def _cfg(**kw) -> S.SpecialistConfig:
    base = dict(encoders=TINY, batch_size=8, lr_encoder=1e-3, lr_head=1e-2, eval_every=5, patience=3, max_steps=400,
                max_seconds=120)  # fmt: skip
    return S.SpecialistConfig(**{**base, **kw})


def test_early_stopping_stops_before_the_step_limit_and_keeps_the_best_score():
    train, valid = _synthetic(64, 0), _synthetic(32, 1)
    model, info = S.train_specialist(TASK, train, _cfg(), valid)
    # the task is learnt to MCC 1 quickly; it cannot improve on that, so patience runs out
    assert info["stopped_by"] == "patience" and info["steps"] < 400
    assert info["valid_score"] == pytest.approx(1.0)
    assert info["steps"] == info["best_step"] + 3 * 5  # three checks after the best, five steps apart
    assert primary_score(TASK, valid, S.predict_specialist(model, TASK, valid)) == pytest.approx(
        info["valid_score"]
    )


def test_the_best_checkpoint_is_restored(monkeypatch):
    # scripted validation scores: best at the 2nd check, then three checks without improvement
    scripted = iter([0.1, 0.5, 0.3, 0.2, 0.4])
    heads: list[torch.Tensor] = []
    real_predict = S.predict_specialist

    def recording_predict(model, task_name, examples, batch_size=32):
        heads.append(model.head.weight.detach().clone())
        return real_predict(model, task_name, examples, batch_size)

    monkeypatch.setattr(S, "predict_specialist", recording_predict)
    monkeypatch.setattr(S, "primary_score", lambda *a: next(scripted))
    model, info = S.train_specialist(TASK, _synthetic(64, 0), _cfg(), _synthetic(16, 1))
    assert info["stopped_by"] == "patience" and info["steps"] == 25 and info["best_step"] == 10
    assert [s for _, s in info["valid_history"]] == [0.1, 0.5, 0.3, 0.2, 0.4]
    assert torch.equal(model.head.weight, heads[1]) and not torch.equal(model.head.weight, heads[-1])


def test_time_cap_and_nan_scores(monkeypatch):
    _, info = S.train_specialist(TASK, _synthetic(16, 0), _cfg(max_seconds=0.0), _synthetic(8, 1))
    assert info["stopped_by"] == "max_seconds" and info["steps"] == 1 and len(info["valid_history"]) == 1
    # a NaN validation score is never an improvement
    assert S._better(0.2, float("nan")) and not S._better(float("nan"), 0.2) and not S._better(0.1, 0.2)


def test_unknown_kind_is_an_input_error():
    with pytest.raises(SeqChatInputError, match="kmer, encoder"):
        S.specialist_system(_cfg(kinds=("kmer", "cnn")))


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not present")
def test_specialist_system_keeps_the_kind_with_the_better_validation_score():
    cfg = _cfg(max_train=300, max_valid=60, max_seconds=5, eval_every=10)
    test = sample_examples("enhancers", "test", 20)
    out = S.specialist_system(cfg)("enhancers", test)
    m = out.metrics
    assert m["train_n"] == 300 and m["valid_n"] == 60 and len(out.predictions) == 20
    better = "encoder" if m["valid_encoder"] > m["valid_kmer"] else "kmer"
    assert m["specialist_kind"] == better
    assert m["kmer_valid_score"] == max(m["kmer_valid_scores"].values())  # on the whole validation split
    only = S.specialist_system(_cfg(kinds=("encoder",), max_train=100, max_valid=30, max_seconds=2))(
        "enhancers", test
    )
    assert only.metrics["specialist_kind"] == "encoder" and "valid_kmer" not in only.metrics
    # the k-mer kind is the k-mer system's model
    kmer = S.specialist_system(_cfg(kinds=("kmer",), max_train=300, max_valid=60))("enhancers", test)
    column = kmer_system(max_train=300)("enhancers", test)
    assert [p.probabilities for p in kmer.predictions] == [p.probabilities for p in column.predictions]
    assert kmer.metrics["kmer_strength"] == column.metrics["kmer_strength"]


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not present")
def test_cli_fine_tunes_the_shipped_encoder_by_default(tmp_path, capsys):
    if shipped_model_dir() is None:
        pytest.skip("no shipped model in this build")
    out = tmp_path / "specialist"
    assert main(["baseline", "specialist", "--tasks", "enhancers", "--kinds", "encoder", "--max-per-task", "10",
                 "--max-train", "100", "--max-valid", "20", "--max-seconds", "2", "--out", str(out),
                 "--no-plots"]) == 0
    run, rows = load_run(out)
    shipped_kinds = {
        e.get("kind", "hf") for e in json.loads((shipped_model_dir() / "config.json").read_text())["encoders"].values()
    }
    # a shipped transformer encoder starts the fine-tuning; shipped feature encoders leave it to the transformer recipe
    assert run["config"]["init_model"] == (str(shipped_model_dir()) if shipped_kinds == {"hf"} else None)
    assert run["config"]["max_seconds"] == 2 and run["config"]["kinds"] == ["encoder"]
    m = rows["enhancers"]["metrics"]
    assert (
        m["specialist_kind"] == "encoder"
        and m["train_n"] == 100
        and m["encoder_stopped_by"] in ("max_seconds", "patience")
    )
    assert (
        main(
            [
                "baseline",
                "specialist",
                "--tasks",
                "enhancers",
                "--init-model",
                str(tmp_path),
                "--out",
                str(out),
            ]
        )
        != 0
    )
    assert "is not a seqchat model folder" in capsys.readouterr().err


def test_a_feature_encoder_folder_is_refused_where_a_transformer_is_needed(tmp_path, tokenizer):
    from conftest import tiny_config
    from seqchat.evaluation.retrieval import load_sequence_encoder
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    spec = {"kind": "features", "featuriser": "dna-tiny", "tokenizer": "nt_6mer", "window": 1000, "overlap": 0,
            "hidden": 16, "spectrum_tokens": 1, "heads": {"enhancers": 1}}  # fmt: skip
    cfg = tiny_config(encoders={"dna": spec, "protein": {"source": "esm-tiny", "tokenizer": "esm_residue",
                                                           "window": 40, "overlap": 4}})  # fmt: skip
    SeqChatForConditionalGeneration(cfg, tokenizer=copy.deepcopy(tokenizer)).save_pretrained(tmp_path)
    with pytest.raises(SeqChatInputError, match="not a transformer"):
        load_sequence_encoder(str(tmp_path), "dna")
