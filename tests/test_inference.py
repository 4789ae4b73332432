"""Task-level inference: batched scoring, candidate probabilities, generation + parsing, confidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqchat.data import templates as T
from seqchat.inference import class_keys, confidence, load_calibrators, predict_task, save_calibrators

DNA = "ACGTTGCAAC" * 8
PROT = "MKVLAAGIIEW" * 3


def test_score_many_equals_score_per_prompt(make_model):
    model = make_model()
    convs = [
        [{"role": "user", "content": "Is @a a promoter?"}],
        [{"role": "user", "content": "Tell me, at some length, what @a might be."}],
        [{"role": "user", "content": "And @a?"}],
    ]
    seqs = [{"a": DNA}, {"a": PROT}, {"a": DNA[:30]}]
    shared = ["Yes.", "No, it is not a promoter at all.", "maybe"]
    per_prompt = [shared, ["a", "b c", "d e f"], list(reversed(shared))]
    batch = model.processor(convs, seqs, add_generation_prompt=True, padding_side="left")
    for cands in (shared, per_prompt):
        many = model.score_many(batch, cands)
        assert many["mean_logprob"].shape == (3, 3)
        for i in range(3):
            one = model.score(model.processor(convs[i], seqs[i], add_generation_prompt=True),
                              cands if cands is shared else cands[i])  # fmt: skip
            torch.testing.assert_close(many["mean_logprob"][i], one["mean_logprob"], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(many["num_tokens"][i], one["num_tokens"])


def test_score_many_rejects_right_padding_and_ragged_candidates(make_model):
    model = make_model()
    convs = [[{"role": "user", "content": "Is @a a promoter?"}], [{"role": "user", "content": "What is @a, in detail?"}]]
    seqs = [{"a": DNA}, {"a": DNA}]
    right = model.processor(convs, seqs, add_generation_prompt=True, padding_side="right")
    with pytest.raises(ValueError, match="left padding"):
        model.score_many(right, ["yes"])
    left = model.processor(convs, seqs, add_generation_prompt=True, padding_side="left")
    with pytest.raises(Exception, match="same number"):
        model.score_many(left, [["yes"], ["yes", "no"]])


# ---- task-level prediction (real registry templates, tiny random model) ---------------------

TATA = ["TATAAAAGGC" * 30, "GCGCGCATGC" * 30, "ACGTTGCAAC" * 30]


def test_score_mode_gives_class_probabilities_that_sum_to_one(make_model):
    model = make_model()
    for task, seqs in (("promoter_300_tata", TATA), ("splice_sites_human", [s[:400] for s in TATA])):
        preds = predict_task(model, task, seqs, mode="score", batch_size=2)
        assert len(preds) == len(seqs)
        for p in preds:
            assert list(p.probabilities) == class_keys(task)
            assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
            assert p.prediction == max(p.probabilities, key=p.probabilities.get)
            assert p.answer == T.canonical_answers(task)[p.prediction]
            assert not p.parse_failed


def test_batching_does_not_change_predictions(make_model):
    model = make_model()
    one = predict_task(model, "splice_sites_human", TATA, mode="score", batch_size=1)
    three = predict_task(model, "splice_sites_human", TATA, mode="score", batch_size=3)
    for a, b in zip(one, three, strict=True):
        assert [a.probabilities[k] for k in a.probabilities] == pytest.approx(
            [b.probabilities[k] for k in b.probabilities], abs=1e-5
        )
    gen1 = predict_task(model, "protein_gb1", ["MKVLAAGIIEW", "MQYKLILNGKTLKGETTTEAVD"], batch_size=1, max_new_tokens=5)
    gen2 = predict_task(model, "protein_gb1", ["MKVLAAGIIEW", "MQYKLILNGKTLKGETTTEAVD"], batch_size=2, max_new_tokens=5)
    assert [p.answer for p in gen1] == [p.answer for p in gen2]


def test_generate_mode_parses_or_flags_each_answer(make_model):
    model = make_model()
    preds = predict_task(model, "promoter_300_tata", TATA, mode="generate", max_new_tokens=6)
    for p in preds:
        assert isinstance(p.answer, str)
        assert p.parse_failed == (p.prediction is None)
        assert p.prediction in (None, 0, 1)


def test_confidence_and_saved_calibrators(make_model, tmp_path):
    from seqchat.evaluation.calibration import PlattCalibrator

    model = make_model()
    raw = confidence(model, "promoter_300_tata", TATA)
    assert raw.shape == (3,) and np.all((raw > 0) & (raw < 1))
    cal = PlattCalibrator().fit(np.array([[0.2, 0.1], [0.1, 0.3], [0.25, 0.05], [0.05, 0.2]]), [1, 0, 1, 0])
    save_calibrators(tmp_path / "calibration.json", {"promoter_300_tata": cal}, {"fitted_by": "test"})
    loaded = load_calibrators(tmp_path)["promoter_300_tata"]
    x = np.array([[0.3, 0.1], [0.1, 0.2]])
    assert loaded.predict_proba(x) == pytest.approx(cal.predict_proba(x))
    calibrated = confidence(model, "promoter_300_tata", TATA, calibrator=loaded)
    assert not np.allclose(calibrated, raw)
    assert load_calibrators(tmp_path / "nowhere") == {}
    with pytest.raises(Exception, match="binary"):
        confidence(model, "splice_sites_human", TATA)
