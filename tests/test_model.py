"""The composite model on tiny random configs: scattering, generation, scoring, persistence, freezing."""

import pytest
import torch

from seqchat.modeling.processor import IGNORE_INDEX
from seqchat.modeling.projectors import PROJECTORS, build_projector, segment_pool

DNA_A = "ACGTTGCAAC" * 10
DNA_B = "TTTTAAAACCGG" * 5
PROT = "MKVLAAGIIEW" * 3


def _runs(row_ids: torch.Tensor, ph: int) -> list[list[int]]:
    """Contiguous runs of placeholder positions in one row."""
    runs: list[list[int]] = []
    prev = -2
    for i in (row_ids == ph).nonzero().flatten().tolist():
        if i != prev + 1:
            runs.append([])
        runs[-1].append(i)
        prev = i
    return runs


@pytest.mark.parametrize("side", ["left", "right"])
def test_ith_sequence_lands_at_ith_placeholder_run(make_model, side):
    model = make_model()
    convs = [
        [{"role": "user", "content": "Is @a like @p?"}],
        [{"role": "user", "content": "Rank @x, @y and then @x again, please, carefully."}],
    ]
    seqs = [{"a": DNA_A, "p": PROT}, {"x": DNA_B, "y": DNA_A}]
    batch = model.processor(convs, seqs, padding_side=side)
    with torch.no_grad():
        vectors = model.project_sequences(batch)
        embeds = model.embed_inputs(batch)
        token_embeds = model.decoder.get_input_embeddings()(
            batch["input_ids"].masked_fill(batch["input_ids"] == model.processor.placeholder_id, 0)
        )
    ph = model.processor.placeholder_id
    k = 0
    for row in range(2):
        runs = _runs(batch["input_ids"][row], ph)
        assert len(runs) == [2, 3][row]
        for run in runs:
            assert torch.equal(embeds[row, run], vectors[k])
            k += 1
        other = batch["input_ids"][row] != ph
        assert torch.equal(embeds[row, other], token_embeds[row, other])
    assert k == len(vectors) == 5
    # the english-aware projector gives each reference its own vectors
    assert not torch.allclose(vectors[0], vectors[3])


def test_scatter_is_the_same_with_left_and_right_padding(make_model):
    model = make_model()
    convs = [[{"role": "user", "content": "@a?"}], [{"role": "user", "content": "Tell me everything about @b now."}]]
    seqs = [{"a": DNA_A}, {"b": DNA_B}]
    with torch.no_grad():
        r = model.forward(model.processor(convs, seqs, padding_side="right"), return_logits=True)["logits"]
        lb = model.processor(convs, seqs, padding_side="left")
        left = model.forward(lb, return_logits=True)["logits"]
    n = int(lb["attention_mask"][0].sum())
    torch.testing.assert_close(r[0, :n], left[0, -n:], atol=1e-4, rtol=1e-4)


def test_inputs_embeds_path_equals_input_ids_path_without_sequences(make_model):
    model = make_model()
    batch = model.processor([{"role": "user", "content": "What is a promoter?"}], None)
    with torch.no_grad():
        ours = model.forward(batch, return_logits=True)["logits"]
        ref = model.decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_generation_with_cache_equals_without(make_model):
    model = make_model(seed=3)
    convs = [[{"role": "user", "content": "Describe @a."}], [{"role": "user", "content": "Is @b soluble, briefly?"}]]
    batch = model.processor(convs, [{"a": DNA_A}, {"b": PROT}], add_generation_prompt=True, padding_side="left")
    fast = model.generate(batch, max_new_tokens=12, use_cache=True)
    slow = model.generate(batch, max_new_tokens=12, use_cache=False)
    assert fast == slow
    assert all(len(t) > 0 for t in fast)
    # a batched row equals the same prompt generated alone
    single = model.processor(convs[1:], [{"b": PROT}], add_generation_prompt=True, padding_side="left")
    assert model.generate(single, max_new_tokens=12)[0] == fast[1]


def test_sampling_is_reproducible_with_a_generator(make_model):
    model = make_model()
    batch = model.processor([{"role": "user", "content": "@a"}], {"a": DNA_A}, add_generation_prompt=True)
    a = model.generate(batch, 8, do_sample=True, top_p=0.9, generator=torch.Generator().manual_seed(1))
    b = model.generate(batch, 8, do_sample=True, top_p=0.9, generator=torch.Generator().manual_seed(1))
    assert a == b


def test_score_agrees_with_direct_forward(make_model):
    model = make_model(seed=1)
    conv = [{"role": "user", "content": "Is there a promoter in @a?"}]
    prompt = model.processor(conv, {"a": DNA_A}, add_generation_prompt=True)
    candidates = ["Yes, there is a promoter.", "No.", "No promoter is present in this sequence."]
    scores = model.score(prompt, candidates)
    for i, cand in enumerate(candidates):
        full = model.processor(conv + [{"role": "assistant", "content": cand}], {"a": DNA_A})
        with torch.no_grad():
            out = model.forward(full)
        # forward's loss is the mean NLL over exactly the answer tokens + end-of-turn
        torch.testing.assert_close(scores["mean_logprob"][i], -out["loss"], atol=1e-4, rtol=1e-4)
        assert int(scores["num_tokens"][i]) == int(out["num_tokens"])
    torch.testing.assert_close(scores["perplexity"], torch.exp(-scores["mean_logprob"]))


def test_freezing_and_gradients(make_model):
    model = make_model().train()
    assert not any(p.requires_grad for p in model.decoder.parameters())
    assert all(p.requires_grad for p in model.projector.parameters())
    assert all(p.requires_grad for p in model.encoders.parameters())
    conv = [{"role": "user", "content": "Is @a a promoter?"}, {"role": "assistant", "content": "Yes."}]
    out = model.forward(model.processor(conv, {"a": DNA_A}))
    out["loss"].backward()
    assert all(p.grad is None for p in model.decoder.parameters())
    assert model.projector.latents.grad.abs().sum() > 0
    assert model.projector.input_proj["dna"].weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoders["dna"].parameters())
    frozen = make_model(freeze_encoders=True)
    assert not any(p.requires_grad for p in frozen.encoders.parameters())


def test_lora_trains_only_adapters_in_the_decoder(make_model):
    model = make_model(lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    names = [n for n, p in model.decoder.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)


@pytest.mark.parametrize("lora", [None, {"r": 2, "alpha": 4}])
def test_save_load_round_trip_gives_identical_logits(make_model, tmp_path, tokenizer, lora):
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    model = make_model(seed=5, lora=lora)
    with torch.no_grad():  # move LoRA B off zero so the round trip would notice lost adapters
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    model.save_pretrained(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "config.json" in files and all(not f.endswith((".bin", ".pt", ".pkl")) for f in files)
    saved = model.trainable_state_dict()
    assert (
        any(k.startswith("projector.input_proj.dna.") for k in saved)
        and any(k.startswith("encoders.dna.") for k in saved)
    )
    torch.manual_seed(123)  # a different init, so equality must come from the loaded weights
    again = SeqChatForConditionalGeneration.from_pretrained(tmp_path, tokenizer=tokenizer).eval()
    conv = [{"role": "user", "content": "@a vs @p"}, {"role": "assistant", "content": "Different."}]
    batch = model.processor(conv, {"a": DNA_A, "p": PROT})
    with torch.no_grad():
        a = model.forward(batch, return_logits=True)["logits"]
        b = again.forward(batch, return_logits=True)["logits"]
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_pretrained_frozen_decoder_is_not_saved(make_model):
    model = make_model()
    model.config.decoder_config = None  # as if the decoder came from a checkpoint
    assert not any(k.startswith("decoder.") for k in model.trainable_state_dict())
    with_lora = make_model(lora={"r": 2})
    with_lora.config.decoder_config = None
    keys = [k for k in with_lora.trainable_state_dict() if k.startswith("decoder.")]
    assert keys and all("lora_" in k for k in keys)


def test_save_in_fp16_shards(make_model, tmp_path):
    model = make_model()
    model.config.decoder_config = None  # only encoders + projector are written
    model.save_pretrained(tmp_path, dtype=torch.float16, shard_mb=0.3)
    shards = list(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and all(p.stat().st_size <= 0.31 * 1024 * 1024 for p in shards)
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for p in shards for v in load_file(str(p)).values())


def test_encoder_outputs_are_cached_across_turns(make_model):
    model = make_model()
    calls = []
    model.encoders["dna"].register_forward_hook(lambda *a: calls.append(1))
    conv = [{"role": "user", "content": "Is @a a promoter?"}]
    model.chat(conv, {"a": DNA_A}, max_new_tokens=2)
    n = len(calls)
    conv2 = conv + [{"role": "assistant", "content": "Yes."}, {"role": "user", "content": "Where in @a?"}]
    model.chat(conv2, {"a": DNA_A}, max_new_tokens=2)
    assert n >= 1 and len(calls) == n


@pytest.mark.parametrize("kind", sorted(PROJECTORS))
def test_projectors_shapes_and_padding_is_masked(kind):
    torch.manual_seed(0)
    spec = {"type": kind, "num_queries": 5, "num_layers": 1, "num_heads": 2}
    proj = build_projector(spec, {"dna": 12, "protein": 8}, 16).eval()
    seq = torch.randn(2, 7, 12)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], dtype=torch.bool)
    q = torch.randn(2, 3, 16)
    qm = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    y = proj("dna", seq, mask, q, qm)
    assert y.shape == (2, 5, 16)
    assert proj("protein", torch.randn(2, 7, 8), mask, q, qm).shape == (2, 5, 16)
    seq2, q2 = seq.clone(), q.clone()
    seq2[1, 4:] = 100.0  # padding content must not matter
    q2[1, 1:] = -50.0
    torch.testing.assert_close(proj("dna", seq2, mask, q2, qm), y)


def test_segment_pool_means_and_short_rows():
    x = torch.arange(6, dtype=torch.float).view(1, 6, 1)
    mask = torch.ones(1, 6, dtype=torch.bool)
    assert segment_pool(x, mask, 3).flatten().tolist() == [0.5, 2.5, 4.5]
    short = torch.tensor([[1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    assert segment_pool(x, short, 4).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]


def test_long_sequences_span_windows_and_pooled_mlp(make_model):
    model = make_model(projector={"type": "mlp", "pool_windows": True})
    long = DNA_A * 3  # 300 nt -> 6 windows of 60 with overlap 6
    batch = model.processor([{"role": "user", "content": "@a"}, {"role": "assistant", "content": "ok"}], {"a": long})
    assert int((batch["input_ids"] == model.processor.placeholder_id).sum()) == 6
    out = model.forward(batch)
    assert torch.isfinite(out["loss"]) and int((batch["labels"] != IGNORE_INDEX).sum()) == out["num_tokens"]


def test_shared_prefix_cache_gives_the_same_loss_and_gradients(make_model):
    model = make_model(seed=2).train()
    sys_msg = {"role": "system", "content": "You are a careful biology assistant. Answer briefly and precisely."}
    convs = [
        [sys_msg, {"role": "user", "content": "Is @a a promoter?"}, {"role": "assistant", "content": "Yes."}],
        [sys_msg, {"role": "user", "content": "Soluble, @p?"}, {"role": "assistant", "content": "No, it is not."}],
    ]
    batch = model.processor(convs, [{"a": DNA_A}, {"p": PROT}])
    n = model._shared_prefix(batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert n >= 20  # the system prompt and chat header
    results = []
    for enabled in (True, False):
        model.prefix_cache_enabled = enabled
        model.zero_grad(set_to_none=True)
        out = model.forward(batch)
        out["loss"].backward()
        results.append((out["loss"].detach(), model.projector.latents.grad.clone(), int(out["num_tokens"])))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-5, rtol=1e-4)
    assert results[0][2] == results[1][2]
    assert not model.decoder.get_input_embeddings().weight.requires_grad
    lora = make_model(lora={"r": 2})
    assert lora._shared_prefix(batch["input_ids"], batch["attention_mask"], batch["labels"]) == 0


def test_scoring_generation_and_training_emit_no_warnings(make_model):
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    model = make_model(seed=2)
    sys_msg = {"role": "system", "content": "You are a careful biology assistant. Answer briefly and precisely."}
    conv = [sys_msg, {"role": "user", "content": "Is @a a promoter?"}]
    prompt = model.processor(conv, {"a": DNA_A}, add_generation_prompt=True)
    train = model.processor([conv + [{"role": "assistant", "content": "Yes."}]] * 2, [{"a": DNA_A}, {"a": DNA_B}])
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    hf_logger = logging.getLogger("transformers")
    hf_logging.warning_once.cache_clear()  # a warning already shown once in this process would be silent
    hf_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for fast in (True, False):
                model.fast_scoring = fast
                model.score(prompt, ["Yes.", "No, it is not."])
            model.generate(prompt, max_new_tokens=3)
            model.generate(prompt, max_new_tokens=3, use_cache=False)
            assert model._shared_prefix(train["input_ids"], train["attention_mask"], train["labels"]) > 0
            model.forward(train)
    finally:
        hf_logger.removeHandler(handler)
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in records] == []


def test_fp16_save_keeps_a_tensor_past_the_fp16_range_in_fp32(make_model, tmp_path):
    model = make_model()
    model.config.decoder_config = None
    with torch.no_grad():
        model.projector.input_proj["dna"].weight[0, 0] = 1e5  # e.g. a whitening weight over a tiny eigenvalue
    model.save_pretrained(tmp_path, dtype=torch.float16)
    from safetensors.torch import load_file

    saved = {k: v for p in tmp_path.glob("model*.safetensors") for k, v in load_file(str(p)).items()}
    assert saved["projector.input_proj.dna.weight"].dtype == torch.float32
    assert saved["projector.input_proj.dna.weight"][0, 0] == 1e5
    assert saved["projector.input_proj.protein.weight"].dtype == torch.float16


def test_a_tensor_larger_than_a_shard_is_cut_into_row_blocks_and_rejoined(make_model, tmp_path, tokenizer):
    import copy

    from seqchat.modeling.model import SeqChatForConditionalGeneration

    model = make_model()
    model.save_pretrained(tmp_path, shard_mb=0.05)  # smaller than the projector's largest matrices
    assert all(p.stat().st_size <= 0.06 * 1024 * 1024 for p in tmp_path.glob("model-*.safetensors"))
    from safetensors.torch import load_file

    keys = {k for p in tmp_path.glob("model-*.safetensors") for k in load_file(str(p))}
    assert any("#part" in k for k in keys)
    again = SeqChatForConditionalGeneration.from_pretrained(tmp_path, tokenizer=copy.deepcopy(tokenizer))
    for k, v in model.trainable_state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    # a lost block is one clear error, not a shape mismatch deep inside torch
    victim = next(p for p in tmp_path.glob("model-*.safetensors") if any("#part0of" in k for k in load_file(str(p))))
    rest = {k: v for k, v in load_file(str(victim)).items() if "#part0of" not in k}
    from safetensors.torch import save_file

    save_file(rest, str(victim))
    from seqchat.errors import SeqChatInputError

    with pytest.raises(SeqChatInputError, match="lacks part"):
        SeqChatForConditionalGeneration.from_pretrained(tmp_path, tokenizer=copy.deepcopy(tokenizer))
