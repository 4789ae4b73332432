"""Integration: the default architecture with the real SmolLM2 decoder on real sequences from shared/data."""

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import SHARED_DATA
from seqchat.modeling.config import SeqChatConfig
from seqchat.modeling.model import SeqChatForConditionalGeneration

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_model():
    cfg = SeqChatConfig.from_file(ROOT / "src" / "seqchat" / "configs" / "model" / "seqchat-small.yaml")
    torch.manual_seed(0)
    return SeqChatForConditionalGeneration(cfg)


def _gue_promoters(n: int) -> list[tuple[str, int]]:
    path = SHARED_DATA / "dna" / "gue" / "prom" / "prom_300_tata" / "train.csv.gz"
    with gzip.open(path, "rt") as fh:
        next(fh)
        return [(s, int(y)) for s, y in (line.strip().split(",") for _, line in zip(range(n), fh, strict=False))]


def test_real_decoder_forward_backward_reaches_encoder_and_projector_not_decoder(real_model):
    model = real_model.train()
    (seq_a, y_a), (seq_b, _) = _gue_promoters(2)
    conv = [
        {"role": "user", "content": "Is there a promoter in @a? Compare it with @b."},
        {"role": "assistant", "content": "Yes, @a is a promoter." if y_a else "No, @a is not a promoter."},
    ]
    prot = "MKPVTLYDVAEYAGVSYQTVSRVVNQASHVSAKTREKVEAAMAELNYIPNR"
    batch = model.processor([conv, [{"role": "user", "content": "Is <protein> soluble?"},
                                    {"role": "assistant", "content": "It is soluble."}]],
                            [{"a": seq_a, "b": seq_b}, [prot]])  # fmt: skip
    out = model.forward(batch)
    assert torch.isfinite(out["loss"]) and out["loss"] > 0
    out["loss"].backward()
    assert all(p.grad is None for p in model.decoder.parameters())
    assert model.projector.latents.grad.abs().sum() > 0
    for name in ("dna", "protein"):
        assert model.projector.input_proj[name].weight.grad.abs().sum() > 0
        emb = model.encoders[name].model.embeddings.word_embeddings.weight
        assert emb.grad is not None and emb.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    model.eval()


def test_real_decoder_generates_and_scores(real_model):
    seq, _ = _gue_promoters(1)[0]
    batch = real_model.processor([{"role": "user", "content": "Is there a promoter in @s?"}], {"s": seq},
                                 add_generation_prompt=True)  # fmt: skip
    with torch.no_grad():
        tokens = real_model.generate(batch, max_new_tokens=8)[0]
        scores = real_model.score(batch, ["Yes, this is a promoter.", "No, this is not a promoter."])
    assert len(tokens) > 0
    text = real_model.processor.tokenizer.decode(tokens, skip_special_tokens=True)
    assert text.strip()
    assert torch.isfinite(scores["mean_logprob"]).all() and (scores["perplexity"] > 1).all()


def test_cli_ask_on_a_fasta_file():
    proc = subprocess.run(
        [sys.executable, "-m", "seqchat.cli", "ask", "Is there a promoter in @lacZ_upstream?",
         "--fasta", str(ROOT / "docs" / "examples" / "example.fa"), "--max-new-tokens", "8"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_cli_reports_bad_input_without_traceback(tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">x\nACGTJ\n")
    proc = subprocess.run(
        [sys.executable, "-m", "seqchat.cli", "ask", "Is @x a promoter?", "--fasta", str(bad), "--modality", "dna"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "character 'J' at position 5" in proc.stderr and "Traceback" not in proc.stderr


def test_shipped_model_answers_depend_on_the_sequence():
    """Issue 13: on 20 random test sequences of one task the shipped model does not give one constant answer."""
    from seqchat.data.build import load_split
    from seqchat.serving.api import SeqChat

    bot = SeqChat.load()
    examples = load_split("promoter_300_all", "test", max_n=20, seed=1)
    table = bot.predict("promoter_300_all", [e.residues for e in examples])
    spread = float(table["p_1"].max() - table["p_1"].min())
    assert table["prediction"].nunique() >= 2 or spread > 0.05, (table["prediction"].tolist(), spread)


def test_shipped_router_picks_the_asked_head_on_held_out_phrasings():
    """Issue 13: tasks told apart by one token ("set 1" vs "set 3", "H3K4me1" vs "H3K4me3") route to their own head."""
    from seqchat.modeling.sequences import make_sequence
    from seqchat.serving.api import SeqChat
    from seqchat.tasks import templates as T
    from seqchat.tasks.registry import get_task

    model = SeqChat.load().model
    dna = make_sequence("ACGT" * 25, "dna", "seq")
    tasks = ["tf_human_1", "tf_human_3", "tf_mouse_1", "yeast_h3k4me1", "yeast_h3k4me3", "promoter_300_all"]
    hits = []
    for task in tasks:
        for i in range(len(T.question_templates(get_task(task), "test"))):
            conv = [{"role": "user", "content": T.render_test_question(task, "seq", i)}]
            (enc, picked), = model.route_picks(model.processor([conv], [{"seq": dna}], add_generation_prompt=True))
            hits.append(picked == model.encoders[enc].route_index(task))
    assert sum(hits) / len(hits) >= 0.9, hits
