"""Task-level inference: batched scoring, candidate probabilities, generation + parsing, confidence."""

from __future__ import annotations

import pytest
import torch

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
