"""Task-level inference: batched scoring, candidate probabilities, generation + parsing, confidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_DECODER
from seqchat.tasks import templates as T
from seqchat.tasks.predict import (
    class_keys,
    confidence,
    load_calibrators,
    predict_task,
    question_indices,
    save_calibrators,
)

DNA = "ACGTTGCAAC" * 8
PROT = "MKVLAAGIIEW" * 3
# larger random weights than the default tiny decoder: peaked logits that position or mask mistakes move
SHARP = {"decoder_config": {**TINY_DECODER, "initializer_range": 0.2}}


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
    convs = [
        [{"role": "user", "content": "Is @a a promoter?"}], [{"role": "user", "content": "What is @a, in detail?"}]
    ]
    seqs = [{"a": DNA}, {"a": DNA}]
    right = model.processor(convs, seqs, add_generation_prompt=True, padding_side="right")
    with pytest.raises(ValueError, match="left padding"):
        model.score_many(right, ["yes"])
    left = model.processor(convs, seqs, add_generation_prompt=True, padding_side="left")
    with pytest.raises(Exception, match="same number"):
        model.score_many(left, [["yes"], ["yes", "no"]])


def _both_paths(model, fn):
    """fn() with the one-pass scoring path and with the reference path (caches cleared before each)."""
    out = []
    for fast in (True, False):
        model.fast_scoring = fast
        model.clear_caches()
        out.append(fn())
    model.fast_scoring = True
    return out


@pytest.mark.parametrize("projector", [None, {"type": "mlp", "pool_windows": True}])
def test_fast_scoring_equals_reference_path(make_model, projector):
    # pooled windows give each sequence its own number of soft tokens: rows of mixed lengths
    model = make_model(seed=3, **SHARP, **({"projector": projector} if projector else {}))
    sys_msg = {"role": "system", "content": "You are a careful biology assistant. Answer briefly and precisely."}
    convs = [
        [sys_msg, {"role": "user", "content": "Is @a a promoter?"}],
        [sys_msg, {"role": "user", "content": "Tell me, at some length, what @a might be."}],
        [sys_msg, {"role": "user", "content": "Is @a a promoter?"}],
        [{"role": "user", "content": "Compare @a with @b."}],
    ]
    seqs = [{"a": DNA * 3}, {"a": PROT}, {"a": DNA[:30]}, {"a": DNA * 2, "b": PROT}]
    # shared leading tokens, a candidate that is another's prefix, a repeated candidate
    shared = ["No.", "No, it is not a promoter.", "No, it is not.", "Yes, it is a promoter.", "Yes", "No."]
    per_prompt = [shared, list(reversed(shared)), ["a", "b c", "d e f", "a b", "a", "x"], shared]
    batch = model.processor(convs, seqs, add_generation_prompt=True, padding_side="left")
    assert batch["attention_mask"][:, 0].min() == 0  # left padding present
    for cands in (shared, per_prompt):
        fast, ref = _both_paths(model, lambda c=cands: model.score_many(batch, c))
        torch.testing.assert_close(fast["mean_logprob"], ref["mean_logprob"], atol=2e-5, rtol=0)
        assert torch.equal(fast["num_tokens"], ref["num_tokens"])
        assert fast["mean_logprob"][0, 0] == pytest.approx(float(fast["mean_logprob"][0, 5]), abs=1e-6)
    single = model.processor(convs[1], seqs[1], add_generation_prompt=True)
    fast, ref = _both_paths(model, lambda: model.score(single, shared))
    torch.testing.assert_close(fast["mean_logprob"], ref["mean_logprob"], atol=2e-5, rtol=0)


def test_fast_scoring_follows_changing_adapters(make_model):
    # LoRA weights change in training: a prefix's keys/values must not be reused from an earlier call
    model = make_model(seed=4, lora={"r": 2}, **SHARP)
    sys_msg = {"role": "system", "content": "You are a careful biology assistant. Answer briefly and precisely."}
    convs = [[sys_msg, {"role": "user", "content": "Is @a a promoter?"}]] * 2
    batch = model.processor(convs, [{"a": DNA}, {"a": DNA[:40]}], add_generation_prompt=True, padding_side="left")
    before = model.score_many(batch, ["Yes.", "No, it is not."])["mean_logprob"]
    with torch.no_grad():
        for name, p in model.decoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    after = model.score_many(batch, ["Yes.", "No, it is not."])["mean_logprob"]
    assert not torch.allclose(before, after, atol=1e-3)
    model.fast_scoring = False
    torch.testing.assert_close(after, model.score_many(batch, ["Yes.", "No, it is not."])["mean_logprob"],
                               atol=2e-5, rtol=0)  # fmt: skip


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
    gen1 = predict_task(
        model, "protein_gb1", ["MKVLAAGIIEW", "MQYKLILNGKTLKGETTTEAVD"], batch_size=1, max_new_tokens=5
    )
    gen2 = predict_task(
        model, "protein_gb1", ["MKVLAAGIIEW", "MQYKLILNGKTLKGETTTEAVD"], batch_size=2, max_new_tokens=5
    )
    assert [p.answer for p in gen1] == [p.answer for p in gen2]


def test_fast_scoring_gives_the_reference_probabilities(make_model):
    model = make_model(seed=5, **SHARP)
    # lengths vary and the hash picks several question templates: batches of different prompts
    seqs = [s[: 300 - 37 * i] for i, s in enumerate(TATA * 3)]
    assert len(set(question_indices("promoter_300_tata", seqs))) > 1
    for task in ("promoter_300_tata", "splice_sites_human"):
        fast, ref = _both_paths(model, lambda t=task: predict_task(model, t, seqs, mode="score", batch_size=4))
        for a, b in zip(fast, ref, strict=True):
            assert list(a.probabilities.values()) == pytest.approx(list(b.probabilities.values()), abs=1e-4)
            assert a.prediction == b.prediction


def test_generate_mode_parses_or_flags_each_answer(make_model):
    model = make_model()
    preds = predict_task(model, "promoter_300_tata", TATA, mode="generate", max_new_tokens=6)
    for p in preds:
        assert isinstance(p.answer, str)
        assert p.parse_failed == (p.prediction is None)
        assert p.prediction in (None, 0, 1)


def test_confidence_and_saved_calibrators(make_model, tmp_path):
    from seqchat.tasks.calibration import PlattCalibrator

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
