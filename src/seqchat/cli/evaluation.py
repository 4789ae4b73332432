"""`seqchat eval`, `seqchat baseline kmer|specialist|zeroshot`, `seqchat report` and `seqchat benchmark`.

Every run writes one folder (see `seqchat.evaluation.benchmark`) under `runs/bench/<system>` by default;
the same `--tasks`, `--split`, `--max-per-task` and `--seed` give every system the same test examples.
`seqchat benchmark` runs the chosen systems one after the other and regenerates docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from seqchat.cli.argtypes import add_device_options
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.baselines import SELECT_GRID
from seqchat.evaluation.benchmark import benchmark_tasks, run_benchmark
from seqchat.evaluation.specialist import (
    SPECIALIST_KINDS,
    SPECIALIST_TYPES,
    SpecialistConfig,
    specialist_system,
)
from seqchat.evaluation.systems import KMER_K, KMER_TYPES, kmer_system, seqchat_system, zeroshot_system
from seqchat.modeling.config import EncoderConfig, SeqChatConfig, read_config_file
from seqchat.tasks.predict import CALIBRATION_FILE, CANDIDATE_LOGIT, save_calibrators
from seqchat.tasks.registry import get_task

DEFAULT_RUNS = Path("runs/bench")
GENE_JSON = Path("runs/gene_function/report.json")
GENE_ABLATION = Path("runs/gene_ablation")
REPO = Path(__file__).resolve().parents[3]  # a source checkout (runs/ lives there)
# the transformer-encoder recipe: the specialist fine-tunes its encoder architecture per task
TRAIN_RECIPE = Path(str(resources.files("seqchat"))) / "configs" / "train" / "transformer-encoders.yaml"
SYSTEMS = ("seqchat", "specialist", "kmer", "zeroshot")
log = logging.getLogger(__name__)
CALIBRATION_TRAIN = 200  # training-split examples per class task that fit seqchat's calibrator (≥200, never test)


def _common(p: argparse.ArgumentParser, system: str) -> None:
    p.add_argument("--tasks", default="all", help="'all' or comma-separated task names")
    p.add_argument("--split", default="test", choices=("test", "valid"))
    p.add_argument("--max-per-task", type=int, default=None, metavar="N",
                   help="at most N test examples per task (seeded, class-stratified subsample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(DEFAULT_RUNS / system), help=f"run folder (default {DEFAULT_RUNS / system})")
    p.add_argument("--resume", action="store_true", help="keep the tasks already done in --out")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the eval, baseline, report and benchmark subcommands."""
    e = sub.add_parser("eval", help="evaluate a seqchat model on the registered tasks (metrics, plots, calibration)")
    e.add_argument("--model", help="trained model folder (default: the shipped model)")
    e.add_argument("--config", help="evaluate an untrained architecture built from this YAML (pipeline checks only)")
    e.add_argument("--mode", choices=("generate", "score"), default="score",
                   help="score (default): class tasks by candidate scoring + calibration, free answers as a second "
                        "column; generate: free answers, parsed, are the predictions")
    e.add_argument("--no-free-answers", action="store_true",
                   help="score mode: skip the generated free answers of class tasks (the second column)")
    e.add_argument("--batch-size", type=int, default=8)
    # bfloat16 runs about twice as fast on CPUs with AVX512-BF16; both are recorded in run.json
    add_device_options(e)
    e.add_argument("--max-new-tokens", type=int, default=48)
    e.add_argument("--calibration-train", type=int, default=None, metavar="N",
                   help=f"training examples per class task that fit its Platt model (default {CALIBRATION_TRAIN}; "
                   "0 = off)")
    e.add_argument("--save-calibration", action="store_true",
                   help="also write the fitted calibrators to <model>/calibration.json (shown next to answers)")
    _common(e, "seqchat")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("baseline", help="run a baseline on the same splits: kmer, specialist or zeroshot")
    bs = b.add_subparsers(dest="baseline", required=True)
    k = bs.add_parser("kmer", help="k-mer frequencies + logistic / ridge regression")
    k.add_argument("--max-train", type=int, default=None,
                   help="cap on training examples per task (seeded subsample; default: the whole training split)")
    _common(k, "kmer")
    s = bs.add_parser("specialist", help="per task, the better on validation of k-mer regression and the encoder "
                                          "fine-tuned with a linear head (early stopping)")  # fmt: skip
    s.add_argument("--kinds", default=None,
                   help="comma-separated single-task models that compete: kmer, encoder (default both)")
    s.add_argument("--init-model", default=None,
                   help="seqchat model folder whose encoders start the fine-tuning (default: the shipped model)")
    s.add_argument("--model-config", default=None,
                   help="instead take the encoders (and `init_encoders` folders) from this YAML "
                   f"(e.g. {TRAIN_RECIPE})")
    s.add_argument("--dna-encoder", help="instead an HF encoder folder (or built-in name) for DNA and RNA")
    s.add_argument("--protein-encoder", help="instead an HF encoder folder (or built-in name) for proteins")
    # defaults of the settings below live in SpecialistConfig; None keeps them
    s.add_argument("--max-train", type=int, default=None, help="cap on training examples (default: the whole split)")
    s.add_argument("--max-valid", type=int, default=None, help="validation examples for early stopping and the choice")
    s.add_argument("--max-seconds", type=float, default=None, help="wall-clock cap of each task's fine-tuning")
    s.add_argument("--eval-every", type=int, default=None, help="optimizer steps between validation checks")
    s.add_argument("--patience", type=int, default=None, help="checks without improvement before stopping")
    s.add_argument("--epochs", type=float, default=None, help="optional cap in passes over the training split")
    s.add_argument("--max-steps", type=int, default=None, help="optimizer steps per task at most")
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr-encoder", type=float, default=None)
    s.add_argument("--lr-head", type=float, default=None)
    s.add_argument("--max-windows", type=int, default=None, help="encoder windows read per sequence")
    s.add_argument("--max-residues", type=int, default=None, help="residues read per sequence (CPU budget; 0 = all)")
    _common(s, "specialist")
    z = bs.add_parser("zeroshot", help="the chat decoder alone, sequence pasted as text (Biology-Instructions prompt)")
    z.add_argument("--decoder", default="smollm2-135m-instruct")
    z.add_argument("--batch-size", type=int, default=4)
    z.add_argument("--max-new-tokens", type=int, default=24)
    z.add_argument("--max-residues", type=int, default=1000, help="paste at most this many residues (CPU budget)")
    _common(z, "zeroshot")
    for p in (k, s, z):
        p.set_defaults(func=cmd_baseline)

    r = sub.add_parser("report", help="write docs/BENCHMARKS.md from benchmark run folders")
    r.add_argument("--runs", default=str(DEFAULT_RUNS), help="folder holding seqchat/, specialist/, kmer/, zeroshot/")
    r.add_argument("--out", default="docs/BENCHMARKS.md")
    r.add_argument("--gene-json", default=str(GENE_JSON),
                   help="`seqchat gene-function report --json` output to include")
    r.add_argument("--gene-ablation", default=str(GENE_ABLATION),
                   help="arms of src/seqchat/configs/train/gene_ablation.yaml to include")
    r.set_defaults(func=cmd_report)

    a = sub.add_parser("benchmark", help="run every system on the same subsample, then write docs/BENCHMARKS.md")
    a.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {', '.join(SYSTEMS)}")
    a.add_argument("--model", help="seqchat model folder (default: the shipped model)")
    a.add_argument("--tasks", default="all")
    a.add_argument("--max-per-task", type=int, default=None)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--runs", default=str(DEFAULT_RUNS))
    a.add_argument("--report", default="docs/BENCHMARKS.md")
    a.add_argument("--gene-json", default=str(GENE_JSON),
                   help="`seqchat gene-function report --json` output to include")
    a.add_argument("--gene-ablation", default=str(GENE_ABLATION),
                   help="arms of src/seqchat/configs/train/gene_ablation.yaml to include")
    a.add_argument("--resume", action="store_true")
    a.add_argument("--threads", type=int, default=None)
    a.set_defaults(func=cmd_benchmark)


def _parser() -> argparse.ArgumentParser:
    """A parser of this module's commands (`seqchat benchmark` runs eval and baseline through it)."""
    parser = argparse.ArgumentParser(prog="seqchat")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _command(args: argparse.Namespace) -> str:
    argv = getattr(args, "argv", None) or sys.argv[1:]
    return "seqchat " + shlex.join(argv)


def _setup(args: argparse.Namespace) -> list[str]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return benchmark_tasks(args.tasks)


def _run(args: argparse.Namespace, name: str, system: Any, tasks: list[str], config: dict[str, Any]) -> dict[str, Any]:
    run = run_benchmark(name, system, tasks, args.out, split=args.split, max_per_task=args.max_per_task,
                        seed=args.seed, config=config, resume=args.resume, plots=not args.no_plots,
                        command=_command(args))  # fmt: skip
    log.info(f"{name}: {run['examples']} examples in {run['seconds']:.0f} s; results in {args.out}/results.md")
    return run


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a seqchat model."""
    from seqchat.modeling.hub import shipped_model_dir  # start-up: loads the model code (transformers)
    from seqchat.serving.api import SeqChat  # start-up: loads the model code (transformers)

    tasks = _setup(args)
    if args.model is None and args.config is None and shipped_model_dir() is None:
        raise SeqChatInputError(
            "no shipped model in this build: pass --model DIR (or --config YAML for an untrained check)"
        )
    model = SeqChat.load(model=args.model, config=args.config, device=args.device, dtype=args.dtype).model
    source = args.model or (f"untrained architecture from {args.config}" if args.config else str(shipped_model_dir()))
    calib_n = args.calibration_train if args.calibration_train is not None else CALIBRATION_TRAIN
    calibrators: dict[str, Any] = {}
    free = args.mode == "score" and not args.no_free_answers
    system = seqchat_system(model, mode=args.mode, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                            calibration_train=calib_n, free_answers=free, seed=args.seed,
                            plot_dir=None if args.no_plots else Path(args.out) / "plots", calibrators=calibrators)
    config = {"model": source, "trained": args.config is None, "model_config": model.config.to_dict(),
              "mode": args.mode, "free_answers": free, "dtype": args.dtype, "device": args.device,
              "batch_size": args.batch_size,
              "max_new_tokens": args.max_new_tokens, "decoding": "greedy",
              "questions": "test-split templates, one per example picked by a hash of its sequence and metadata",
              "unparsed_answers": "class tasks: the training-split majority class; regression: the training mean",
              "calibration": {"train_examples_per_task": calib_n, "candidate_logit": CANDIDATE_LOGIT,
                              "platt": "LogisticRegression(C=0.1, lbfgs) on the two class logits (binary) or the "
                                       "class log-probabilities (multi-class, multinomial)"}}  # fmt: skip
    run = _run(args, "seqchat", system, tasks, config)
    if calibrators:
        info = {"fitted_by": run["command"], "data_version": run["data_version"], "git_sha": run["git_sha"]}
        save_calibrators(Path(args.out) / CALIBRATION_FILE, calibrators, info)
        if args.save_calibration and args.model:
            written = save_calibrators(Path(args.model) / CALIBRATION_FILE, calibrators, info)
            log.info(f"calibrators written to {written}")
    return 0


_SPECIALIST_SETTINGS = ("max_train", "max_valid", "max_seconds", "eval_every", "patience", "epochs", "max_steps",
                        "batch_size", "lr_encoder", "lr_head", "max_windows", "max_residues")  # fmt: skip


def _specialist_config(args: argparse.Namespace) -> Any:
    """Encoders from the shipped model (or --init-model); with --model-config / --dna-encoder / --protein-encoder,
    as that recipe starts them (its `init_encoders` folders) or as given."""
    from seqchat.modeling.hub import shipped_model_dir  # start-up: loads the model code (transformers)

    settings = {k: getattr(args, k) for k in _SPECIALIST_SETTINGS if getattr(args, k) is not None}
    if settings.get("max_residues") == 0:
        settings["max_residues"] = None
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip()) if args.kinds else SPECIALIST_KINDS
    recipe = args.model_config or args.dna_encoder or args.protein_encoder
    init = args.init_model or (None if recipe else _transformer_model(shipped_model_dir()))
    if init is not None:
        if not (Path(init) / "config.json").exists():
            raise SeqChatInputError(f"--init-model '{init}' is not a seqchat model folder (no config.json)")
        model_cfg = SeqChatConfig.from_file(Path(init) / "config.json")
        return SpecialistConfig(encoders=dict(model_cfg.encoders), modalities=dict(model_cfg.modalities),
                                init_model=str(init), kinds=kinds, seed=args.seed, **settings)  # fmt: skip
    return SpecialistConfig(**_recipe_encoders(args), kinds=kinds, seed=args.seed, **settings)


def _transformer_model(folder: Path | None) -> Path | None:
    """The folder if its encoders are transformers (fine-tunable), else None (then the transformer recipe's
    encoders start the specialist: a feature encoder is the k-mer arm's features with linear heads)."""
    if folder is None:
        return None
    encoders = json.loads((Path(folder) / "config.json").read_text()).get("encoders", {})
    return folder if all(EncoderConfig.of(e).kind == "hf" for e in encoders.values()) else None


def _recipe_encoders(args: argparse.Namespace) -> dict[str, Any]:
    """Encoders and modalities of a training recipe, with --dna-encoder / --protein-encoder swapped in."""

    from seqchat.modeling.hub import default_config_path  # start-up: loads the model code (transformers)

    path = (
        Path(args.model_config)
        if args.model_config
        else (TRAIN_RECIPE if TRAIN_RECIPE.exists() else default_config_path())
    )
    doc = read_config_file(path)
    model = dict(doc.get("model", doc))
    init = model.pop("init_encoders", None) or {}
    model_cfg = SeqChatConfig.from_dict(model)
    encoders = {n: dict(e) for n, e in model_cfg.encoders.items()}
    for name, folder in init.items():
        found = next((p for p in (Path(folder), REPO / folder) if p.exists()), None)
        if found is not None:
            encoders[name]["init_from"] = str(found)
    for modality, folder in (("dna", args.dna_encoder), ("protein", args.protein_encoder)):
        if folder:
            encoders[model_cfg.modalities[modality]].pop("init_from", None)
            encoders[model_cfg.modalities[modality]]["source"] = folder
    return {"encoders": encoders, "modalities": dict(model_cfg.modalities)}


def cmd_baseline(args: argparse.Namespace) -> int:
    """Run one baseline."""
    tasks = _setup(args)
    if args.baseline == "kmer":
        system = kmer_system(args.max_train, args.seed)
        kept = [t for t in tasks if get_task(t).task_type in KMER_TYPES]
        config = {"features": "k-mer frequencies per k, scaled to [-1, 1]", "k": KMER_K, "max_train": args.max_train,
                  "models": "LogisticRegression (C) or Ridge (alpha), fitted on the training split; the strength "
                            "with the best primary metric on the whole validation split is kept",
                  "strengths": SELECT_GRID}  # fmt: skip
    elif args.baseline == "specialist":
        cfg = _specialist_config(args)
        if not args.threads:
            import torch

            torch.set_num_threads(1)  # the per-task time cap is stated for one thread
        if "encoder" in cfg.kinds and not all(cfg.pretrained().values()):
            log.warning("specialist encoders are built-in configs with random weights (not pretrained)")
        system = specialist_system(cfg)
        kept = [t for t in tasks if get_task(t).task_type in SPECIALIST_TYPES]
        config = cfg.describe()
    else:
        system, describe = zeroshot_system(args.decoder, args.batch_size, args.max_new_tokens, args.max_residues)
        kept, config = tasks, describe()
    config["skipped_tasks"] = [t for t in tasks if t not in kept]
    _run(args, args.baseline, system, kept, config)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the benchmark report."""
    from seqchat.evaluation.report import write_report  # start-up: loads the model code (transformers)

    log.info(f"wrote {write_report(args.runs, args.out, args.gene_json, args.gene_ablation)}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Every chosen system on the same subsample, then the report."""
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SeqChatInputError(f"unknown systems {sorted(unknown)}: use {', '.join(SYSTEMS)}")
    shared = ["--tasks", args.tasks, "--seed", str(args.seed)]
    shared += ["--max-per-task", str(args.max_per_task)] if args.max_per_task else []
    shared += ["--resume"] if args.resume else []
    shared += ["--threads", str(args.threads)] if args.threads else []
    for i, name in enumerate(systems, 1):
        log.info(f"benchmark: system {i}/{len(systems)}: {name}")
        argv = ["eval"] if name == "seqchat" else ["baseline", name]
        argv += shared + ["--out", str(Path(args.runs) / name)]
        argv += ["--model", args.model] if name == "seqchat" and args.model else []
        sub = _parser().parse_args(argv)
        sub.argv = argv
        sub.func(sub)
    return cmd_report(argparse.Namespace(
        runs=args.runs, out=args.report, gene_json=args.gene_json, gene_ablation=args.gene_ablation
    ))
