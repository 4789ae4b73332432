"""Training: schedule, masking, exact resume, two-process DDP (gloo) and the pretraining recipe."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY_DECODER
from seqchat.modeling.tokenization import get_sequence_tokenizer
from seqchat.training.loop import TrainConfig, lr_at
from seqchat.training.pretrain import mask_tokens

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {
    "decoder": "smollm2-135m-instruct",
    "decoder_config": TINY_DECODER,
    "encoders": {
        "dna": {"source": "nt-tiny", "tokenizer": "nt_6mer", "window": 120, "overlap": 6},
        "protein": {"source": "esm-tiny", "tokenizer": "esm_residue", "window": 120, "overlap": 4},
    },
    "projector": {"type": "english_perceiver", "num_queries": 4, "num_layers": 1, "num_heads": 4, "ffn_mult": 2},
    "lora": {"r": 2, "alpha": 4, "dropout": 0.1},  # dropout makes resume depend on the restored RNG
}


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1)


def test_masking_fifteen_percent_of_residues_never_specials():
    tok = get_sequence_tokenizer("nt_6mer")
    ids = torch.tensor([tok.encode("ACGTAC" * 100)] * 20)
    masked, labels = mask_tokens(ids, tok, 0.15, torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert 0.12 < chosen[:, 1:].float().mean() < 0.18
    assert not chosen[:, 0].any()  # <cls> never chosen
    assert torch.equal(labels[chosen], ids[chosen])
    frac_mask = (masked[chosen] == tok.mask_token_id).float().mean()
    assert 0.7 < frac_mask < 0.9
    assert torch.equal(masked[~chosen], ids[~chosen])


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    from seqchat.data.build import BuildConfig, build_dataset

    out = tmp_path_factory.mktemp("build")
    build_dataset(out, BuildConfig(tasks=["promoter_300_tata", "protein_solubility"], max_per_split=8, multi=False))
    return out


def _recipe(tmp: Path, build: Path, **train) -> Path:
    cfg = {
        "model": TINY_MODEL,
        "data": {"build_dir": str(build), "sampling": "uniform", "valid_per_task": 2},
        "train": {"out_dir": str(tmp / "run"), "max_steps": 4, "batch_size": 2, "grad_accum": 2, "lr": 1e-3,
                  "warmup_steps": 1, "save_every": 0, "eval_every": 2, "seed": 3, **train},
    }  # fmt: skip
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(args: list[str], env_extra: dict[str, str] | None = None, launcher: list[str] | None = None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    cmd = (launcher or [sys.executable]) + ["-m", "seqchat.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_resume_after_a_kill_gives_the_same_losses(tmp_path, build_dir):
    whole = _recipe(tmp_path / "a", build_dir)
    _run(["train", "--config", str(whole)])
    reference = _losses(tmp_path / "a" / "run")
    assert len(reference) == 4

    split = _recipe(tmp_path / "b", build_dir)
    _run(["train", "--config", str(split), "--stop-after-step", "2"])  # the process ends after step 2
    assert len(_losses(tmp_path / "b" / "run")) == 2
    assert not (tmp_path / "b" / "run" / "final").exists()
    _run(["train", "--config", str(split), "--resume"])
    assert _losses(tmp_path / "b" / "run") == reference
    # the finished run is a loadable seqchat model folder
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    model = SeqChatForConditionalGeneration.from_pretrained(tmp_path / "b" / "run" / "final")
    assert model.config.lora.r == 2
    valid = (tmp_path / "b" / "run" / "valid.jsonl").read_text().splitlines()
    assert "valid_loss" in json.loads(valid[-1])

    # export: fp16 shards, a card that reports the run, curves, and a folder that loads
    from seqchat.training.export import export

    info = export(tmp_path / "b" / "run", tmp_path / "ship", {})
    assert info["instruction_tuning"]["steps"] == 4 and info["instruction_tuning"]["samples"] == 4 * 2 * 2
    card = (tmp_path / "ship" / "MODEL_CARD.md").read_text()
    assert "4 steps × 2 × accumulation 2 = 16 conversations" in card
    assert (tmp_path / "ship" / "training_curves.png").stat().st_size > 1000
    shipped = SeqChatForConditionalGeneration.from_pretrained(tmp_path / "ship")
    assert next(iter(shipped.trainable_state_dict().values())).dtype == torch.float32  # upcast on load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_see_different_data_and_end_with_identical_weights(tmp_path, build_dir):
    recipe = _recipe(tmp_path, build_dir, max_steps=3, trace_data=True)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]  # fmt: skip
    summaries = _run(["train", "--config", str(recipe)], launcher=launcher)
    assert sorted(s["rank"] for s in summaries) == [0, 1] and all(s["world"] == 2 for s in summaries)
    assert summaries[0]["weights_sha1"] == summaries[1]["weights_sha1"]
    run = tmp_path / "run"
    seen = [[json.loads(line)["ids"] for line in (run / f"data_trace_rank{r}.jsonl").read_text().splitlines()]
            for r in (0, 1)]  # fmt: skip
    assert len(seen[0]) == len(seen[1]) == 3 * 2
    assert seen[0] != seen[1]


def _stop_then_resume(cfg: dict, recipe: Path):
    """Write an encoder recipe, run it to step 2, resume it to the end; its summary and the saved encoder."""
    from transformers import AutoModel

    recipe.write_text(yaml.safe_dump(cfg))
    _run(["pretrain-encoder", "--config", str(recipe), "--stop-after-step", "2"])
    summary = _run(["pretrain-encoder", "--config", str(recipe), "--resume"])[0]
    return summary, AutoModel.from_pretrained(Path(cfg["train"]["out_dir"]) / "final")


def test_warm_start_can_leave_the_projector_fresh_for_a_new_projector_type(tmp_path):
    from seqchat.errors import SeqChatInputError
    from seqchat.training.builders import build_model_for_training

    torch.manual_seed(0)
    source = build_model_for_training(TINY_MODEL)
    source.save_pretrained(tmp_path / "src")
    mlp = {**TINY_MODEL, "projector": {"type": "mlp", "pool_windows": True}, "init_from": str(tmp_path / "src")}
    with pytest.raises(SeqChatInputError, match="does not match"):
        build_model_for_training(mlp)  # the perceiver's weights have no place in an mlp projector
    torch.manual_seed(1)
    model = build_model_for_training({**mlp, "init_skip": ["projector"]})
    theirs, ours = source.state_dict(), model.state_dict()
    enc = [k for k in ours if k.startswith("encoders.dna.")]
    assert enc and all(torch.equal(ours[k], theirs[k]) for k in enc)
    assert model.projector.pool_windows and "projector.net.1.weight" in ours and "projector.net.1.weight" not in theirs
    with pytest.raises(SeqChatInputError, match="init_from"):
        build_model_for_training({**TINY_MODEL, "init_skip": ["projector"]})


def test_pretrain_recipe_saves_an_automodel_folder(tmp_path):
    from seqchat.data.corpora import dna_windows

    corpus = tmp_path / "corpus.fa"
    with open(corpus, "w") as fh:
        for i, s in zip(range(300), dna_windows(window=300, exclude_test=False), strict=False):
            fh.write(f">w{i}\n{s.residues}\n")
    cfg = {
        "encoder": {"source": "nt-tiny", "window": 120},
        "corpus": {"modality": "dna", "path": str(corpus), "valid_size": 8},
        "train": {"out_dir": str(tmp_path / "pt"), "max_steps": 3, "batch_size": 4, "warmup_steps": 1,
                  "eval_every": 3, "save_every": 1},
    }  # fmt: skip
    summary, enc = _stop_then_resume(cfg, tmp_path / "pt.yaml")
    assert summary["finished"] and summary["loss"] > 0 and summary["step"] == 3
    assert enc.config.vocab_size == 4107 and enc.config.position_embedding_type == "rotary"
    assert "valid_masked_acc" in json.loads((tmp_path / "pt" / "valid.jsonl").read_text().splitlines()[-1])


def test_multitask_encoder_stage_learns_and_saves_an_automodel_folder(tmp_path):
    cfg = {
        "objective": "multitask",
        "encoder": {"source": "nt-tiny", "tokenizer": "nt_6mer", "window": 120, "overlap": 10},
        "tasks": {"names": ["core_promoter_notata", "promoter_strength_leaf"], "max_train": 64, "max_valid": 16,
                  "max_residues": 120},
        "train": {"out_dir": str(tmp_path / "mt"), "max_steps": 4, "batch_size": 8, "warmup_steps": 1,
                  "eval_every": 4, "save_every": 2},
    }  # fmt: skip
    summary, enc = _stop_then_resume(cfg, tmp_path / "mt.yaml")
    assert summary["finished"] and summary["step"] == 4
    assert enc.config.vocab_size == 4107
    val = json.loads((tmp_path / "mt" / "valid.jsonl").read_text().splitlines()[-1])
    assert set(val) == {"step", "valid_acc/core_promoter_notata", "valid_r/promoter_strength_leaf"}
    assert 0.0 <= val["valid_acc/core_promoter_notata"] <= 1.0


def test_multitask_stage_rejects_a_free_text_task(tmp_path):
    cfg = {"objective": "multitask", "encoder": {"source": "nt-tiny", "tokenizer": "nt_6mer"},
           "tasks": {"names": ["gene_description"]},
           "train": {"out_dir": str(tmp_path / "x"), "max_steps": 1}}
    recipe = tmp_path / "x.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "seqchat.cli", "pretrain-encoder", "--config", str(recipe)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "gene_description" in proc.stderr and "Traceback" not in proc.stderr


def test_refresh_card_writes_hand_checked_averages(tmp_path):
    from seqchat.training.export import refresh_card

    ship, ev = tmp_path / "ship", tmp_path / "eval"
    ship.mkdir()
    ev.mkdir()
    src = ROOT / "src" / "seqchat" / "weights" / "seqchat-small"
    for f in ("training_summary.json", "config.json"):
        (ship / f).write_text((src / f).read_text())
    (ev / "metrics.csv").write_text(
        "system,task,group,task_type,metric,value\n"
        "seqchat,a,g,binary,mcc,0.5\nseqchat,a,g,binary,f1,0.9\nseqchat,b,g,multiclass,mcc,-0.1\n"
        "seqchat,c,g,binary,mcc,0.05\nseqchat,r,g,regression,pearson,0.3\nseqchat,r,g,regression,spearman,-0.2\n"
        "seqchat,s,g,regression,pearson,-0.1\n"
    )  # fmt: skip
    (ev / "results.md").write_text("| task |\n")
    refresh_card(ship, ev)
    card = (ship / "MODEL_CARD.md").read_text()
    # MCC mean (0.5 - 0.1 + 0.05) / 3 = 0.15, one task above 0.1; Pearson mean (0.3 - 0.1) / 2 = 0.1, one positive
    assert "mean MCC 0.150 over 3 tasks, 1 with MCC > 0.1" in card
    assert "mean Pearson r 0.100 over 2 tasks, 1 positive" in card
    assert card.rstrip().endswith("| task |")


def test_recipe_arms_merge_overrides_and_get_their_own_out_dir():
    from seqchat.errors import SeqChatInputError
    from seqchat.training.builders import read_yaml, recipe_arm

    raw = read_yaml(ROOT / "src" / "seqchat" / "configs" / "train" / "gene_ablation.yaml")
    lora = recipe_arm(raw, "perceiver_lora")
    assert lora["model"]["lora"] == {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    assert (
        lora["model"]["projector"]["type"] == "english_perceiver"
        and lora["train"]["out_dir"] == "runs/gene_ablation/perceiver_lora"
    )
    pooled = recipe_arm(raw, "mlp_pooled_frozen")
    assert pooled["model"]["projector"]["type"] == "mlp" and pooled["model"]["projector"]["pool_windows"]
    assert pooled["model"]["lora"] is None
    assert "arms" not in pooled and raw["train"]["out_dir"] == "runs/gene_ablation"  # the recipe itself is untouched
    with pytest.raises(SeqChatInputError, match="pass --arm"):
        recipe_arm(raw, None)
    with pytest.raises(SeqChatInputError, match="perceiver_frozen"):
        recipe_arm(raw, "nope")
