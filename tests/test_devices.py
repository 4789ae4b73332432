"""`--device` / `--dtype`: names resolved to torch objects, refused clearly, and a model that runs in bfloat16."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from conftest import tiny_config
from seqchat.errors import SeqChatInputError
from seqchat.modeling.devices import resolve_device, resolve_dtype
from seqchat.modeling.model import SeqChatForConditionalGeneration
from seqchat.serving import SeqChat
from seqchat.tasks.predict import confidence

FEATURE_ENCODERS = {
    "dna": {"kind": "features", "featuriser": "dna-tiny", "tokenizer": "nt_6mer", "window": 1000, "overlap": 0,
            "hidden": 16, "spectrum_tokens": 2, "heads": {"promoter_300_all": 1}},
    "protein": {"kind": "features", "featuriser": "protein-tiny", "tokenizer": "esm_residue", "window": 1000,
                "overlap": 0, "hidden": 16, "spectrum_tokens": 1, "heads": {"protein_stability": 1}},
}  # fmt: skip


def test_device_and_dtype_names_resolve_or_say_what_to_pass():
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(None)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("bfloat16") is torch.bfloat16 and resolve_dtype(None) is torch.float32
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(SeqChatInputError, match="no CUDA GPU.*--device cpu"):
            resolve_device("cuda")
    for bad in ("tpu", "gpu0"):
        with pytest.raises(SeqChatInputError, match="use cpu, cuda"):
            resolve_device(bad)
    with pytest.raises(SeqChatInputError, match="unknown dtype 'bf16'.*float32, bfloat16, float16"):
        resolve_dtype("bf16")


def test_a_feature_encoder_model_loads_and_answers_in_bfloat16(tmp_path, tokenizer):
    torch.manual_seed(0)
    cfg = tiny_config(encoders=copy.deepcopy(FEATURE_ENCODERS),
                      projector={"type": "task_router", "num_queries": 2, "route_dim": 16, "hidden": 32})  # fmt: skip
    SeqChatForConditionalGeneration(cfg, tokenizer=copy.deepcopy(tokenizer)).save_pretrained(tmp_path)
    full, half = SeqChat.load(model=tmp_path), SeqChat.load(model=tmp_path, dtype="bfloat16")
    assert {p.dtype for p in half.model.parameters()} == {torch.bfloat16}
    assert half.model.encoders["dna"].feature_mean.dtype == torch.bfloat16
    seqs = {"p1": "ACGTTGCA" * 30}
    answer = half.ask("Is there a promoter in @p1?", seqs, max_new_tokens=4)
    assert isinstance(answer.text, str)
    dna = ["ACGTTGCA" * 30, "TTTTAAAACCCG" * 25, "GCGCGATATA" * 30]
    p_full = confidence(full.model, "promoter_300_all", dna)
    p_half = confidence(half.model, "promoter_300_all", dna)
    # the same model in half the bits: probabilities close, not equal
    assert p_half.shape == (3,) and abs(p_half - p_full).max() < 0.05


def test_the_cli_refuses_a_device_it_does_not_have_before_loading(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: --device cuda is valid here")
    r = subprocess.run([sys.executable, "-m", "seqchat.cli", "ask", "Is @a a promoter?", "--seq", "a=ACGTACGTAC",
                        "--device", "cuda"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr
    args = ["predict", "--task", "promoter_300_all", "--fasta", "x.fa", "--out", str(tmp_path / "o.csv")]
    r = subprocess.run([sys.executable, "-m", "seqchat.cli", *args, "--dtype", "bf16"], capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "invalid choice: 'bf16'" in r.stderr
