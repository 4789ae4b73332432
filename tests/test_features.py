"""Training-free featurisers, the feature encoder, its use inside the model, and stage-1 head fitting."""

import copy
import random

import numpy as np
import pytest
import torch
from torch import nn

from conftest import SHARED_DATA, tiny_config
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.metrics import mcc
from seqchat.modeling.encoders import build_sequence_encoder
from seqchat.modeling.features import (
    FEATURISERS,
    FeatureEncoder,
    load_feature_encoder,
    save_feature_encoder,
    task_identity,
)
from seqchat.training.heads import HeadsConfig, feature_statistics, fit_head, task_examples, train_heads

TINY_DNA = {"kind": "features", "featuriser": "dna-tiny", "tokenizer": "nt_6mer", "window": 1000, "overlap": 0,
            "hidden": 16, "spectrum_tokens": 2, "heads": {"promoter_300_all": 1, "splice_sites_human": 3}}  # fmt: skip
TINY_PROTEIN = {"kind": "features", "featuriser": "protein-tiny", "tokenizer": "esm_residue", "window": 1000,
                "overlap": 0, "hidden": 16, "spectrum_tokens": 1, "heads": {"protein_stability": 1}}  # fmt: skip


def _random_dna(n: int, length: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGT") for _ in range(length)) for _ in range(n)]


def test_dna_spectrum_by_hand():
    f = FEATURISERS["dna-tiny"]  # k = 1, 2, 3, then log length, GC, unknown fraction
    x = f(["ACGTN"])[0]
    assert np.allclose(x[:4], [0.25, 0.25, 0.25, 0.25])  # N is skipped
    two = x[4:20]
    # AC, CG, GT (TN is broken by N): indices 0*4+1, 1*4+2, 2*4+3
    assert np.allclose(two[[1, 6, 11]], 1 / 3) and two.sum() == pytest.approx(1.0)
    three = x[20:84]
    assert np.allclose(three[[0 * 16 + 1 * 4 + 2, 1 * 16 + 2 * 4 + 3]], 0.5)  # ACG, CGT
    assert np.allclose(x[84:], [np.log1p(5), 0.5, 0.2])


def test_dna_spectrum_reads_u_as_t_any_case_and_never_spans_n_or_neighbours():
    f = FEATURISERS["dna-tiny"]
    assert np.allclose(f(["acgu"])[0][:84], f(["ACGT"])[0][:84])
    aa = f(["AANAA"])[0][4:20]
    assert aa[0] == 1.0 and aa.sum() == 1.0  # only AA, twice
    # a batch gives each row exactly what it gets alone: no k-mer joins two sequences
    seqs = ["ACG", "T", "", "GGGCCCA"]
    batch = f(seqs)
    for i, s in enumerate(seqs):
        assert np.allclose(batch[i], f([s])[0])
    assert np.all(batch[2][:84] == 0)


def test_protein_features_by_hand():
    f = FEATURISERS["protein-tiny"]  # 1-mers, 2-mers, then composition
    x = f(["KKDEX"])[0]
    comp = x[420:]
    # X is no amino acid: fractions are over the 4 known residues
    assert comp[0] == pytest.approx(np.log1p(5))
    assert comp[1] == pytest.approx(0.5) and comp[2] == pytest.approx(0.5) and comp[3] == pytest.approx(0.0)
    assert comp[4] == pytest.approx((2 * -3.9 - 3.5 - 3.5) / 4)  # Kyte-Doolittle mean
    assert f.dim == x.shape[0] == 20 + 400 + 11


def test_full_featurisers_have_the_documented_widths():
    assert FEATURISERS["dna"].dim == 4 + 16 + 64 + 256 + 1024 + 4096 + 3
    assert FEATURISERS["protein"].dim == 20 + 400 + 8000 + 11


def test_feature_encoder_tokens_shape_and_content():
    torch.manual_seed(0)
    enc = FeatureEncoder({**TINY_DNA, "cnn": {"channels": 4, "blocks": 1, "kernel": 3, "tokens": 2}}).eval()
    seqs = _random_dna(2, 80, 0)
    with torch.no_grad():
        out = enc.encode(seqs)
        heads = enc.head_outputs(enc.head_inputs(seqs))
    assert out.shape == (2, 2 + 2 + 2, 16) == (2, enc.num_tokens, enc.hidden_size)
    assert not torch.allclose(out[0], out[1])  # the tokens depend on the sequence
    # head tokens: the task identity, then the head's outputs padded to the widest head (3 classes)
    promoter, splice = out[:, 4], out[:, 5]
    assert torch.allclose(promoter[:, :13], task_identity("promoter_300_all", 13).expand(2, -1))
    assert torch.allclose(promoter[:, 13:14], heads["promoter_300_all"]) and torch.all(promoter[:, 14:] == 0)
    assert torch.allclose(splice[:, 13:], heads["splice_sites_human"])


def test_feature_encoder_reads_token_ids_like_any_encoder():
    enc = FeatureEncoder(TINY_DNA).eval()
    seq = "ACGTACGTTTNACGGA"
    ids = torch.tensor([enc.tokenizer.encode(seq)])
    assert enc.decode(ids, torch.ones_like(ids)) == [seq]
    with torch.no_grad():
        assert torch.allclose(enc(ids, torch.ones_like(ids))[0], enc.encode([seq])[0])
    assert enc.output_mask(torch.ones(3, 7, dtype=torch.bool)).shape == (3, enc.num_tokens)


def test_encoder_kind_registry():
    assert isinstance(build_sequence_encoder(TINY_DNA), FeatureEncoder)
    with pytest.raises(SeqChatInputError, match="kind"):
        build_sequence_encoder({**TINY_DNA, "kind": "nope"})
    with pytest.raises(SeqChatInputError, match="train-heads"):
        load_feature_encoder({**TINY_DNA, "init_from": "/nonexistent/folder"})


def test_feature_encoder_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    enc = FeatureEncoder(TINY_PROTEIN).eval()
    enc.feature_mean.uniform_()
    save_feature_encoder(enc, tmp_path)
    loaded = load_feature_encoder({"kind": "features", "init_from": str(tmp_path), "window": 50, "overlap": 5}).eval()
    assert loaded.window == 50  # the config may re-window; shapes come from the folder
    seqs = ["MKVLAAGIIEW", "MSTNPKPQRKTKRNTNRRPQDVKFPGG"]
    with torch.no_grad():
        assert torch.equal(loaded.encode(seqs), enc.encode(seqs))


def test_model_with_feature_encoders_trains_saves_and_loads(tmp_path, tokenizer):
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    torch.manual_seed(0)
    cfg = tiny_config(encoders={"dna": dict(TINY_DNA), "protein": dict(TINY_PROTEIN)})
    model = SeqChatForConditionalGeneration(cfg, tokenizer=copy.deepcopy(tokenizer))
    conv = [{"role": "user", "content": "Is @a a promoter? And @p?"}, {"role": "assistant", "content": "Yes"}]
    batch = model.processor([conv], [{"a": "ACGTTGCAAC" * 12, "p": "MKVLAAGIIEW" * 3}])
    loss = model(batch)["loss"]
    loss.backward()
    assert model.encoders["dna"].heads["promoter_300_all"].weight.grad is not None
    model.save_pretrained(tmp_path)
    again = SeqChatForConditionalGeneration.from_pretrained(tmp_path, tokenizer=copy.deepcopy(tokenizer))
    assert again.config.encoders["dna"]["heads"] == TINY_DNA["heads"]
    model.eval(), again.eval()
    with torch.no_grad():
        assert torch.allclose(again(batch)["loss"], model(batch)["loss"])
        assert torch.equal(again.encoders["dna"].task_ids, model.encoders["dna"].task_ids)


def test_fit_head_learns_a_planted_motif_and_its_head_predicts_it():
    seqs = _random_dna(400, 30, 1)
    y = np.array([i % 2 for i in range(400)])
    seqs = [s[:10] + "TATATATA" + s[18:] if label else s for s, label in zip(seqs, y, strict=True)]
    enc = FeatureEncoder({**TINY_DNA, "heads": {"promoter_300_all": 1}})
    mean, scale = feature_statistics(enc.featuriser, seqs[:300])
    enc.feature_mean.copy_(mean), enc.feature_scale.copy_(scale)
    with torch.no_grad():
        x = enc.standardised(seqs).numpy()
    fit = fit_head(x[:300], y[:300], x[300:], y[300:], "promoter_300_all", HeadsConfig(c_grid=(0.01, 0.1)))
    assert fit.metric == "mcc" and fit.valid > 0.8 and fit.choice in (0.01, 0.1)
    enc.heads["promoter_300_all"].weight.data.copy_(torch.from_numpy(fit.weight))
    enc.heads["promoter_300_all"].bias.data.copy_(torch.from_numpy(fit.bias))
    with torch.no_grad():
        logit = enc.encode(seqs[300:])[:, -1, -1].numpy()
    assert ((logit > 0) == y[300:]).mean() > 0.9


def test_fit_head_regression_reports_pearson_on_the_standardised_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)).astype(np.float32)
    y = 50 + 10 * x[:, 0] + rng.normal(size=300)
    fit = fit_head(x[:200], y[:200], x[200:], y[200:], "protein_stability", HeadsConfig(alpha_grid=(1.0, 10.0)))
    assert fit.metric == "pearson" and fit.valid > 0.9
    assert fit.target_mean == pytest.approx(y[:200].mean()) and abs(fit.weight[0, 0] - 10 / y[:200].std()) < 0.1


def test_fit_head_folds_the_chosen_positional_weight_into_the_head():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 30)).astype(np.float32)
    y = (x[:, 25] + x[:, 3] + rng.normal(size=300) > 0).astype(np.int64)
    cfg = HeadsConfig(c_grid=(0.001,), positional_weights=(1.0, 30.0))
    fit = fit_head(x[:200], y[:200], x[200:], y[200:], "promoter_300_all", cfg, split=20)
    assert fit.positional_weight in (1.0, 30.0)
    # the head reads unweighted inputs: its predictions reproduce the validation score it was picked by
    pred = ((x[200:] @ fit.weight.T + fit.bias)[:, 0] > 0).astype(np.int64)
    assert mcc(y[200:], pred) == pytest.approx(fit.valid)


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED_DATA / "dna").exists(), reason="needs ../shared/data")
def test_train_heads_on_real_data_resumes_per_task_and_loads_into_an_encoder(tmp_path):
    cfg = HeadsConfig(tasks=["promoter_300_all", "protein_stability"], max_train=200, max_valid=100, hidden=16,
                      spectrum_tokens=1, c_grid=(0.01,), alpha_grid=(100.0,))  # fmt: skip
    cfg.encoders["dna"]["featuriser"] = "dna-tiny"
    cfg.encoders["protein"]["featuriser"] = "protein-tiny"
    train, valid = task_examples("yeast_h3", HeadsConfig())  # 39 validation examples in the registry: topped up
    assert len(valid) >= 100 and not {e.residues for e in train} & {e.residues for e in valid}
    summary = train_heads(cfg, tmp_path)
    assert summary["results"]["dna"]["promoter_300_all"]["valid"] > 0.3
    assert summary["results"]["protein"]["protein_stability"]["metric"] == "pearson"
    done = tmp_path / "dna" / "tasks" / "promoter_300_all.json"
    stamp = done.stat().st_mtime_ns
    train_heads(cfg, tmp_path)  # a rerun reads each finished task instead of refitting it
    assert done.stat().st_mtime_ns == stamp
    enc = load_feature_encoder({"kind": "features", "init_from": str(tmp_path / "dna")})
    assert enc.tasks == ["promoter_300_all"] and enc.num_tokens == 2
    # whitened principal components: the spectrum token has about unit variance over real sequences
    with torch.no_grad():
        tokens = enc.encode(_random_dna(50, 300, 2))
    assert 0.05 < float(tokens[:, 0].std()) < 20


def _router_model(tokenizer):
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    torch.manual_seed(0)
    cfg = tiny_config(
        encoders={"dna": dict(TINY_DNA), "protein": dict(TINY_PROTEIN)},
        projector={"type": "task_router", "num_queries": 3, "route_dim": 16, "hidden": 32},
        freeze_encoders=True,
    )
    return SeqChatForConditionalGeneration(cfg, tokenizer=copy.deepcopy(tokenizer))


def test_route_index_points_at_the_task_head_token():
    enc = FeatureEncoder(TINY_DNA)
    tokens = enc.encode(_random_dna(2, 50, 0))
    j = enc.route_index("splice_sites_human")
    assert j == 2 + 1  # two spectrum tokens, then promoter_300_all, then splice_sites_human (sorted)
    assert torch.equal(tokens[0, j, : 16 - enc.slots], enc.task_ids[1])
    assert enc.route_index("gene_description") is None


def test_task_router_learns_to_route_by_question_without_the_decoder(tokenizer):
    from seqchat.training.instruct import InstructJob

    model = _router_model(tokenizer)
    assert model.processor.num_tokens("dna", 120) == 3
    seqs = _random_dna(8, 60, 1)

    def rec(i, task, question):
        return {"id": f"{task}/{i}", "task": task, "kind": "single",
                "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "Yes"}],
                "sequences": {"s": {"residues": seqs[i], "modality": "dna"}}}  # fmt: skip

    train = {"promoter_300_all": [rec(i, "promoter_300_all", "Is @s a promoter?") for i in range(4)],
             "splice_sites_human": [rec(i, "splice_sites_human", "Which splice site is @s?") for i in range(4, 8)]}
    job = InstructJob(model=model, train=train, valid=train, batch_size=4)
    batch = job.batch(0, 0, 0, 1)
    assert batch["occurrence_rows"] == [0, 1, 2, 3]
    before = job.route_accuracy(train)
    summary = job.route_warmup(60, 1e-2)
    assert summary["last_loss"] < summary["first_loss"] and job.route_accuracy(train) == 1.0 >= before
    # the decoder was not involved: its weights have no gradient, and the answer loss still adds the routing loss
    assert all(p.grad is None for p in model.decoder.parameters())
    out = model(batch)
    assert "route_loss" in out and out["loss"] > out["route_loss"]
    out["loss"].backward()
    assert model.projector.out[-1].weight.grad is not None
    assert all(p.grad is None for p in model.encoders.parameters())


def test_task_router_output_moves_with_the_routed_head(tokenizer):
    model = _router_model(tokenizer).eval()
    enc = model.encoders["dna"]
    with torch.no_grad():
        enc.heads["promoter_300_all"].weight.zero_()
        conv = [{"role": "user", "content": "Is @s a promoter?"}]
        batch = model.processor([conv, conv], [{"s": "ACGT" * 20}, {"s": "ACGT" * 20}], add_generation_prompt=True)
        base = model.embed_inputs(batch)
        enc.heads["promoter_300_all"].bias.fill_(5.0)
        model.encoder_cache.clear()
        moved = model.embed_inputs(batch)
    assert not torch.allclose(base, moved)


def test_probs_head_format_puts_each_class_in_a_fixed_slot():
    spec = {**TINY_DNA, "heads": {"promoter_300_all": 1, "splice_sites_human": 3, "crispr_on_target": 1},
            "head_format": "probs", "regression": ["crispr_on_target"], "slots": 5}  # fmt: skip
    enc = FeatureEncoder(spec)
    assert enc.slots == 5
    pred = torch.tensor([[2.0], [-1.0]])
    binary = enc.slot_values("promoter_300_all", pred)
    assert (
        torch.allclose(binary[:, 1], torch.sigmoid(pred[:, 0])) and torch.allclose(binary[:, :2].sum(1), torch.ones(2))
    )
    assert torch.equal(enc.slot_values("crispr_on_target", pred)[:, -1], pred[:, 0])
    three = enc.slot_values("splice_sites_human", torch.tensor([[0.0, 1.0, 2.0]]))
    assert torch.allclose(three[0, :3], torch.tensor([0.0, 1.0, 2.0]).softmax(-1)) and three[0, 3:].abs().sum() == 0
    tokens = enc.encode(_random_dna(3, 40, 0))
    assert tokens.shape == (3, 2 + 3, 16)
    with pytest.raises(ValueError, match="slots"):
        FeatureEncoder({**spec, "slots": 3})  # 3 classes + a regression slot need 4
    with pytest.raises(ValueError, match="head_format"):
        FeatureEncoder({**spec, "head_format": "odds"})


def test_alike_tasks_share_one_head_and_route_to_it():
    from seqchat.training.heads import alike_groups, head_groups

    tasks = ["promoter_300_all", "deepgene_promoter_300", "tf_human_0", "tf_human_1"]
    assert alike_groups(tasks) == [["promoter_300_all", "deepgene_promoter_300"], ["tf_human_0"], ["tf_human_1"]]
    groups = head_groups(HeadsConfig(merge_alike=True), tasks)
    shared = "deepgene_promoter_300+promoter_300_all"
    assert groups[shared] == ["deepgene_promoter_300", "promoter_300_all"] and groups["tf_human_0"] == ["tf_human_0"]
    assert list(head_groups(HeadsConfig(), tasks)) == tasks
    enc = FeatureEncoder({**TINY_DNA, "heads": {shared: 1, "tf_human_0": 1},
                          "routes": {"promoter_300_all": shared, "deepgene_promoter_300": shared}})  # fmt: skip
    assert enc.route_index("promoter_300_all") == enc.route_index("deepgene_promoter_300") == 2
    assert enc.route_index("tf_human_0") == 3 and enc.route_index("tf_human_1") is None


def test_gated_hard_router_reads_exactly_the_picked_head():
    from seqchat.modeling.projectors import TaskRoutedProjector

    torch.manual_seed(0)
    proj = TaskRoutedProjector({"dna": 8}, decoder_dim=6, num_queries=2, route_dim=4, hidden=8, gate_slots=2,
                               hard_route=True)  # fmt: skip
    with torch.no_grad():
        proj.gates.normal_()
    seq, mask = torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool)
    question, qmask = torch.randn(1, 5, 6), torch.ones(1, 5, dtype=torch.bool)
    picked = int(proj.route_logits("dna", seq, mask, question, qmask).argmax())
    out = proj("dna", seq, mask, question, qmask)
    other = seq.clone()
    other[0, [i for i in range(3) if i != picked]] += 0.01  # the tokens not picked move: only the mean sees them
    with torch.no_grad():
        proj.input_proj["dna"].weight.zero_(), proj.input_proj["dna"].bias.zero_()
        out, moved = proj("dna", seq, mask, question, qmask), proj("dna", other, mask, question, qmask)
    assert torch.allclose(out, moved)
    # the gate adds each slot's K vectors in proportion to the routed token's slot value
    seq2 = seq.clone()
    seq2[0, picked, -1] += 1.0
    with torch.no_grad():
        shift = proj("dna", seq2, mask, question, qmask) - out
        lin = proj.out(proj.values["dna"](seq2[:, picked]) + proj.context(torch.zeros(1, 6))).view(1, 2, 6)
        lin = lin - proj.out(proj.values["dna"](seq[:, picked]) + proj.context(torch.zeros(1, 6))).view(1, 2, 6)
    assert torch.allclose(shift, lin + proj.gates[1][None], atol=1e-5)
    # straight-through: the router still gets a gradient from the answer side
    proj("dna", seq, mask, question, qmask).sum().backward()
    assert proj.query[0].weight.grad is not None and proj.query[0].weight.grad.abs().sum() > 0


def test_router_ngrams_tell_apart_questions_that_differ_in_one_token(tokenizer):
    from seqchat.modeling.projectors import TaskRoutedProjector

    torch.manual_seed(0)
    proj = TaskRoutedProjector({"dna": 8}, decoder_dim=6, num_queries=2, route_dim=4, hidden=8, ngram_buckets=97,
                               ngram_dim=3, word_weights=False)  # fmt: skip
    # one question embedding for both tasks: only the token ids (and so the n-grams) differ
    ids = torch.tensor(
        [tokenizer.encode("Is it bound in ChIP-seq set 1?"), tokenizer.encode("Is it bound in ChIP-seq set 3?")]
    )
    qmask = torch.ones(ids.shape, dtype=torch.bool)
    question = torch.randn(1, ids.shape[1], 6).expand(2, -1, -1)
    seq, mask = torch.randn(1, 2, 8).expand(2, -1, -1), torch.ones(2, 2, dtype=torch.bool)
    assert proj.ngram_vector(ids, qmask).abs().sum() == 0  # unseen n-grams add nothing
    with pytest.raises(ValueError, match="question_ids"):
        proj.route_logits("dna", seq, mask, question, qmask)
    opt = torch.optim.Adam(proj.parameters(), lr=0.05)
    target = torch.tensor([0, 1])
    for _ in range(60):
        loss = nn.functional.cross_entropy(proj.route_logits("dna", seq, mask, question, qmask, ids), target)
        opt.zero_grad(), loss.backward(), opt.step()
    assert proj.route_logits("dna", seq, mask, question, qmask, ids).argmax(-1).tolist() == [0, 1]


def test_feature_residue_scores_share_a_kmer_score_over_its_occurrences():
    enc = FeatureEncoder(TINY_DNA)  # dna-tiny: 1-mers (4), 2-mers (16), 3-mers (64), then composition
    scores = torch.zeros(FEATURISERS["dna-tiny"].dim)
    scores[4 + 0 * 4 + 1] = 1.0  # the 2-mer AC
    out = enc.residue_scores("ACACN", scores)
    assert out.tolist() == pytest.approx([0.25, 0.25, 0.25, 0.25, 0.0])
    scores[:] = 0
    scores[-1] = 5.0  # composition has no position
    assert enc.residue_scores("ACGT", scores).abs().sum() == 0


def test_gradient_attribution_through_feature_encoders(tokenizer):
    from seqchat.serving.attribution import attribute

    model = _router_model(tokenizer)
    seq = "ACGTTGCAAC" * 6
    conv = [{"role": "user", "content": "Is @a a promoter?"}]
    (att,) = attribute(model, conv, "Yes", {"a": seq})
    assert att.name == "a" and len(att.scores) == len(seq) and any(abs(x) > 0 for x in att.scores)


def test_pair_heads_sum_role_features_and_every_encoder_reading_an_input_gets_one(tmp_path):
    cfg = HeadsConfig(tasks=["antibody_neutralization", "rna_protein_interaction", "yeast_h3"], max_train=300,
                      max_valid=120, hidden=16, spectrum_tokens=1, c_grid=(0.01,), pair_heads=True)  # fmt: skip
    cfg.encoders["dna"]["featuriser"] = "dna-tiny"
    cfg.encoders["protein"]["featuriser"] = "protein-tiny"
    assert cfg.tasks_of("protein") == ["antibody_neutralization", "rna_protein_interaction"]
    assert cfg.tasks_of("dna") == ["rna_protein_interaction", "yeast_h3"]
    assert HeadsConfig(tasks=cfg.tasks).tasks_of("protein") == []  # pair heads are opt-in
    summary = train_heads(cfg, tmp_path)
    antibody = summary["results"]["protein"]["antibody_neutralization"]
    # both inputs are proteins: one head on their summed features, scored on each sequence alone as well
    assert set(antibody["valid_per_role"]) == {"antibody", "antigen"}
    assert "valid_per_role" not in summary["results"]["protein"]["rna_protein_interaction"]
    enc = load_feature_encoder({"kind": "features", "init_from": str(tmp_path / "dna")})
    assert enc.tasks == ["rna_protein_interaction", "yeast_h3"] and enc.route_index("rna_protein_interaction") == 1


def test_alike_tasks_share_the_head_that_does_best_on_their_mean_validation(tmp_path):
    cfg = HeadsConfig(tasks=["promoter_300_all", "deepgene_promoter_300"], max_train=400, max_valid=150, hidden=16,
                      spectrum_tokens=1, c_grid=(0.003,), merge_alike=True)  # fmt: skip
    cfg.encoders = {"dna": cfg.encoders["dna"] | {"featuriser": "dna-tiny"}}
    result = train_heads(cfg, tmp_path)["results"]["dna"]["deepgene_promoter_300+promoter_300_all"]
    # the pooled fit and each member's own head are candidates; the pick has the best mean member validation
    assert set(result["candidates"]) == {"pooled", "promoter_300_all", "deepgene_promoter_300"}
    assert result["candidates"][result["shared_head"]] == max(result["candidates"].values())
    assert result["valid"] == pytest.approx(sum(result["valid_per_member"].values()) / 2)
