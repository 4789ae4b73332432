"""The Python API (`SeqChat`) and gradient × input attribution, on a tiny saved model."""

import math

import pytest
import torch

from seqchat.errors import SeqChatInputError
from seqchat.modeling.processor import IGNORE_INDEX
from seqchat.modeling.sequences import Sequence
from seqchat.modeling.tokenization import get_sequence_tokenizer
from seqchat.serving.attribution import _per_residue, attribute
from serving_fixtures import DNA, PROT, bot, fasta_file, model_dir  # noqa: F401

Q = "Is there a promoter in @lacZ_upstream?"


def test_ask_returns_text_with_its_confidence(bot):  # noqa: F811
    answer = bot.ask(Q, {"lacZ_upstream": DNA, "lacI": PROT}, max_new_tokens=6)
    assert isinstance(answer, str) and answer.strip() == answer and answer
    assert 0 < answer.confidence <= 1
    assert answer.probability is None and answer.probabilities is None and answer.attribution is None
    assert answer.to_dict()["answer"] == answer.text


def test_confidence_comes_from_the_chosen_tokens_log_probabilities(bot):  # noqa: F811
    """The log-probabilities generation reports are those of a teacher-forced pass over the same tokens."""
    model = bot.model
    batch = bot._prompt([[{"role": "user", "content": Q}], [{"role": "user", "content": "Tell me about @p."}]],
                        [{"lacZ_upstream": DNA}, {"p": PROT}])  # fmt: skip
    logprobs: list[list[float]] = []
    with torch.no_grad():
        tokens = model.generate(batch, max_new_tokens=5, token_logprobs=logprobs)
        embeds = model.embed_inputs(batch)
        for b in range(2):
            keep = batch["attention_mask"][b].bool()
            prompt = embeds[b, keep]
            full = torch.cat([prompt, model.decoder.get_input_embeddings()(torch.tensor(tokens[b]))])[None]
            logp = torch.log_softmax(model.decoder(inputs_embeds=full).logits[0].float(), -1)
            start = prompt.shape[0] - 1
            expected = [float(logp[start + i, t]) for i, t in enumerate(tokens[b])]
            assert logprobs[b][: len(tokens[b])] == pytest.approx(expected, abs=1e-4)
            if len(logprobs[b]) > len(tokens[b]):  # stopped: the end-of-turn token was the greedy choice
                assert logprobs[b][-1] == pytest.approx(float(logp[start + len(tokens[b])].max()), abs=1e-4)
    answers = bot.chat_batch([[{"role": "user", "content": Q}]], [{"lacZ_upstream": DNA}], max_new_tokens=5)
    assert answers[0].confidence == pytest.approx(math.exp(sum(logprobs[0]) / len(logprobs[0])), rel=1e-4)


def test_ask_reads_a_fasta_pool_and_names_missing_sequences(bot, fasta_file):  # noqa: F811
    pool = bot.read_fasta(fasta_file)
    assert set(pool) == {"lacZ_upstream", "lacI"}
    assert bot.ask(Q, pool, max_new_tokens=3) == bot.ask(Q, {"lacZ_upstream": DNA}, max_new_tokens=3)
    with pytest.raises(
        SeqChatInputError, match=r"no sequence is named @lacY \(available: @lacZ_upstream, @lacI\)"
    ):
        bot.ask("And @lacY?", pool)


def test_streamed_pieces_make_the_answer(bot):  # noqa: F811
    pieces: list[str] = []
    answer = bot.ask(Q, {"lacZ_upstream": DNA}, max_new_tokens=8, stream=pieces.append)
    assert len(pieces) > 1
    assert "".join(pieces).strip() == answer


def test_batched_answers_equal_one_by_one(bot):  # noqa: F811
    convs = [
        [{"role": "user", "content": Q}],
        [{"role": "user", "content": "What does @p do?"}],
        [{"role": "user", "content": "Compare @a with @p, briefly please."}],
    ]
    pools = [{"lacZ_upstream": DNA}, {"p": PROT}, {"a": DNA[:60], "p": PROT}]
    batched = bot.chat_batch(convs, pools, max_new_tokens=[5, 7, 6])
    single = [bot.chat(c, p, max_new_tokens=n) for c, p, n in zip(convs, pools, [5, 7, 6], strict=True)]
    assert [a.text for a in batched] == [a.text for a in single]
    assert [a.confidence for a in batched] == pytest.approx([a.confidence for a in single], rel=1e-3)


def test_each_sequence_is_encoded_once_per_conversation(bot):  # noqa: F811
    bot.model.encoder_cache.clear()
    calls = []
    handle = bot.model.encoders["dna"].register_forward_hook(lambda *a: calls.append(1))
    try:
        history: list[dict[str, str]] = []
        pool = {"lacZ_upstream": DNA}
        for q in (Q, "Why do you say so about @lacZ_upstream?", "And its GC content?"):
            a = bot.ask(q, pool, history, max_new_tokens=4)
            history += [{"role": "user", "content": q}, {"role": "assistant", "content": a.text}]
    finally:
        handle.remove()
    assert len(calls) == 1


def test_ask_with_a_task_gives_class_probabilities(bot):  # noqa: F811
    a = bot.ask(Q, {"lacZ_upstream": DNA}, max_new_tokens=4, task="promoter_300_all")
    assert set(a.probabilities) == {0, 1}
    assert sum(a.probabilities.values()) == pytest.approx(1.0)
    with pytest.raises(SeqChatInputError, match="binary and multi-class"):
        bot.ask(Q, {"lacZ_upstream": DNA}, task="promoter_strength_leaf")
    with pytest.raises(SeqChatInputError, match="exactly one sequence"):
        bot.ask("Compare @a and @b", {"a": DNA, "b": DNA[:50]}, task="promoter_300_all")


def test_predict_returns_a_dataframe_per_task_type(bot):  # noqa: F811
    df = bot.predict("promoter_300_all", {"x": DNA, "y": DNA[:80]})
    assert list(df.index) == ["x", "y"]
    assert list(df.columns) == ["prediction", "label", "p_0", "p_1", "answer"]
    assert ((df.p_0 + df.p_1) - 1).abs().max() < 1e-5
    assert set(df.prediction) <= {0, 1}
    reg = bot.predict("protein_meltome", [PROT, PROT[:20]], max_new_tokens=4)
    assert list(reg.index) == ["seq1", "seq2"] and "parse_failed" in reg.columns
    with pytest.raises(SeqChatInputError, match="is PROTEIN, but task 'promoter_300_all' reads DNA"):
        bot.predict("promoter_300_all", {"p": PROT})


# ---- attribution ------------------------------------------------------------------------------


def test_kmer_scores_spread_over_their_residues_and_overlaps_average():
    tok = get_sequence_tokenizer("nt_6mer")
    seq = Sequence("s", "ACGTACGTA", "dna")
    # one window: <cls> ACGTAC G T A
    scores = torch.tensor([100.0, 6.0, 1.0, 2.0, 3.0])
    content = torch.tensor([False, True, True, True, True])
    assert _per_residue(seq, [scores], [content], tok, window=60, overlap=6) == [1.0] * 6 + [1.0, 2.0, 3.0]
    # two windows of 6 nt overlapping by 3 (ACGTAC, TACGTA), one 6-mer each (the second padded once):
    # residues 3-5 are covered twice and get the mean of 12/6 and 6/6
    w = [torch.tensor([0.0, 12.0, 0.0]), torch.tensor([0.0, 6.0, 99.0])]
    c = [torch.tensor([False, True, False]), torch.tensor([False, True, False])]
    out = _per_residue(seq, w, c, tok, window=6, overlap=3)
    assert out[:3] == [2.0, 2.0, 2.0] and out[3:6] == [1.5, 1.5, 1.5] and out[6:] == [1.0, 1.0, 1.0]


def _log_likelihood(model, messages, answer, seqs, scale_at=None, eps=0.0):
    """log p(answer | conversation) with the protein input embedding at one token scaled by (1 + eps)."""
    table = model.encoders["protein"].model.embeddings.word_embeddings

    def hook(_m, _i, out):
        out = out.clone()
        if scale_at is None:
            out = out * (1 + eps)
        else:
            out[:, scale_at] = out[:, scale_at] * (1 + eps)
        return out

    h = table.register_forward_hook(hook)
    try:
        batch = model.processor(messages + [{"role": "assistant", "content": answer}], seqs)
        model.encoder_cache.clear()  # the cached encoder output would hide the scaled embedding
        with torch.no_grad():
            logits = model.forward(batch, return_logits=True)["logits"][0, :-1]
    finally:
        h.remove()
    # in float64 throughout (the model's loss is float32, too coarse for a finite difference)
    target = batch["labels"][0, 1:]
    keep = target != IGNORE_INDEX
    return float(torch.log_softmax(logits[keep], -1).gather(1, target[keep, None]).sum())


def test_attribution_is_gradient_times_input(make_model):
    """Scaling one residue's input embedding by (1+ε) changes log p(answer) by ε × its score."""
    model = make_model(seed=3).double()
    messages = [{"role": "user", "content": "Is @p soluble?"}]
    seqs = {"p": PROT[:30]}
    answer = "Yes, it is soluble."
    (attr,) = attribute(model, messages, answer, seqs)
    assert attr.name == "p" and attr.modality == "protein" and len(attr.scores) == 30
    # rotary tables stay float32 in a float64 model, which limits how small ε can be
    eps = 5e-3
    for i in (0, 7, 29):
        up = _log_likelihood(model, messages, answer, seqs, scale_at=1 + i, eps=eps)  # token 0 is <cls>
        down = _log_likelihood(model, messages, answer, seqs, scale_at=1 + i, eps=-eps)
        assert (up - down) / (2 * eps) == pytest.approx(attr.scores[i], rel=1e-2, abs=1e-7)
    assert any(abs(s) > 0 for s in attr.scores)


def test_attribution_covers_every_residue_of_referenced_sequences_only(bot):  # noqa: F811
    long_dna = (DNA * 3)[:250]  # several tiny-model windows of 60 nt overlapping by 6
    a = bot.ask(
        "Is @d bound by @p?", {"d": long_dna, "p": PROT, "unused": DNA}, max_new_tokens=4, attribution=True
    )
    by_name = {x.name: x for x in a.attribution}
    assert set(by_name) == {"d", "p"}
    assert len(by_name["d"].scores) == 250 and len(by_name["p"].scores) == len(PROT)
    assert all(math.isfinite(s) for x in a.attribution for s in x.scores)
    assert sum(abs(s) for s in by_name["d"].scores) > 0
    # the answer's own text is attributed, so a different answer gives different scores
    other = bot.attribute(
        [{"role": "user", "content": "Is @d bound by @p?"}], "No.", {"d": long_dna, "p": PROT}
    )
    assert other[0].scores != by_name["d"].scores
