"""`seqchat predict` (a task over every record of a FASTA or pair file, into a CSV) and `seqchat serve`
(the HTTP API)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from seqchat.cli.argtypes import add_device_options, port_number, positive_int
from seqchat.errors import SeqChatInputError
from seqchat.serving.predict import (
    check_output,
    check_shard,
    count_records,
    pair_input_hint,
    predict_fasta,
    predict_pairs,
    prediction_columns,
    resolved_mode,
)
from seqchat.serving.schemas import Limits
from seqchat.serving.server import allowed_hosts, create_app
from seqchat.tasks.registry import get_task

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `predict` and `serve`."""
    _add_predict(sub)
    _add_serve(sub)


def run_predict(args: argparse.Namespace) -> int:
    """Predict a task for every record of a FASTA file (a pair task: a pair CSV or two FASTA files)."""
    from seqchat.serving.api import SeqChat  # start-up: loads the model code (transformers)

    resolved_mode(args.task, args.mode)  # fail on a bad task or mode before loading the model
    pair = get_task(args.task).is_pair
    fastas = args.fasta or []
    ok = (
        (bool(args.pairs) != bool(fastas) and len(fastas) in (0, 2)) if pair else (not args.pairs and len(fastas) == 1)
    )
    if not ok:
        hint = pair_input_hint(args.task) if pair else "give one FASTA file (--fasta)"
        raise SeqChatInputError(f"task '{args.task}' reads {'pairs' if pair else 'one sequence per record'}: {hint}")
    # every input is checked before the model loads: task, mode, output file, and a FASTA file that can be
    # read to the end (not truncated, UTF-8)
    check_shard(args.num_shards, args.shard_index)
    check_output(Path(args.out), prediction_columns(args.task, args.mode))
    for f in fastas:
        count_records(Path(f))
    bot = SeqChat.load(model=args.model, config=args.config, device=args.device, dtype=args.dtype)
    kwargs = dict(batch_size=args.batch_size, chunk_size=args.chunk_size, mode=args.mode,
                  question_index=args.question_index, max_new_tokens=args.max_new_tokens,
                  calibrator=bot.calibrators.get(args.task), progress=not args.no_progress,
                  num_shards=args.num_shards, shard_index=args.shard_index)  # fmt: skip
    try:
        if pair:
            s = predict_pairs(bot.model, args.task, args.pairs or fastas, args.out, **kwargs)
        else:
            s = predict_fasta(bot.model, args.task, fastas[0], args.out, **kwargs)
    except KeyboardInterrupt:
        log.warning(f"predict interrupted; every finished chunk is saved in {args.out}: run the same "
                    "command again to resume where it stopped")  # fmt: skip
        return 130
    parts = [f"{s.predicted} sequences predicted in {s.seconds:.1f} s ({s.per_second:.1f} sequences/s)"]
    if s.already_done:
        parts.append(f"{s.already_done} already in {args.out}")
    if s.skipped:
        parts.append(f"{len(s.skipped)} skipped: {', '.join(i for i, _ in s.skipped[:10])}"
                     + (" ..." if len(s.skipped) > 10 else ""))  # fmt: skip
    log.info("predict: " + "; ".join(parts) + f" -> {args.out}")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict a task for every sequence of a FASTA file into a CSV")
    p.add_argument("--task", required=True, help="task name (`seqchat data tasks` lists them)")
    p.add_argument(
        "--fasta", nargs="+", metavar="FASTA",
        help="input FASTA (plain or .gz); records are named by their ids. A pair task takes two files "
        "(e.g. antibodies then antigens) whose records are matched by id",
    )
    p.add_argument("--pairs", help="a pair task's input: CSV/TSV with the columns id and the task's two roles "
                   "(e.g. id,antibody,antigen; `seqchat data tasks` lists the roles)")  # fmt: skip
    p.add_argument("--out", required=True, help="output CSV; rerunning skips the ids it already holds")
    p.add_argument("--model", help="trained model folder (default: the shipped model)")
    p.add_argument("--config", help="build an untrained architecture from this YAML instead")
    p.add_argument("--mode", default="auto", choices=["auto", "score", "generate"],
                   help="auto: candidate scoring for class tasks, generation for the others")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--chunk-size", type=positive_int, default=256, help="records read and written per step")
    p.add_argument("--question-index", type=int, default=None,
                   help="which held-out question template to ask (default: picked by a hash of each sequence)")
    p.add_argument("--max-new-tokens", type=positive_int, default=48)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--num-shards", type=positive_int, default=1,
                   help="split the input over this many processes (each with its own --out)")  # fmt: skip
    p.add_argument("--shard-index", type=int, default=0, help="which shard this process predicts: 0..N-1")
    add_device_options(p)
    p.set_defaults(func=run_predict)


def run_serve(args: argparse.Namespace) -> int:
    """Load the model and serve it until interrupted."""
    import uvicorn  # start-up: the web server, only for `seqchat serve`

    from seqchat.modeling.hub import DEFAULT_CONFIG  # start-up: loads the model code (transformers)
    from seqchat.serving.api import SeqChat  # start-up: loads the model code (transformers)

    limits = Limits(max_batch=args.max_batch, max_queue=args.max_queue, max_body_bytes=args.max_body_bytes,
                    max_sequences=args.max_sequences, max_sequence_length=args.max_sequence_length,
                    predict_chunk=args.predict_chunk,
                    max_attribution_residues=args.max_attribution_residues)  # fmt: skip
    bot = SeqChat.load(model=args.model, config=args.config, device=args.device, dtype=args.dtype)
    log.info(f"serving on http://{args.host}:{args.port}/ (API docs at /docs)")
    model_id = Path(args.model).name if args.model else Path(args.config).stem if args.config else DEFAULT_CONFIG
    app = create_app(bot, limits, allowed_hosts(args.host, args.allowed_host), model_id)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    d = Limits()
    p = sub.add_parser("serve", help="HTTP API and web chat page (FastAPI + uvicorn)")
    p.add_argument("--model", help="trained model folder (default: the shipped model)")
    p.add_argument("--config", help="build an untrained architecture from this YAML instead")
    add_device_options(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0 exposes it on the network)"
    )
    p.add_argument("--port", type=port_number, default=8000)
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="also answer requests whose Host header is NAME ('*': any; default: localhost names "
                        "and the --host address)")  # fmt: skip
    p.add_argument("--max-batch", type=positive_int, default=d.max_batch, help="requests answered together")
    p.add_argument("--max-queue", type=positive_int, default=d.max_queue, help="waiting requests before 503s")
    p.add_argument("--max-body-bytes", type=positive_int, default=d.max_body_bytes)
    p.add_argument("--max-sequences", type=positive_int, default=d.max_sequences, help="sequences per request")
    p.add_argument(
        "--max-sequence-length", type=positive_int, default=d.max_sequence_length, help="residues per sequence"
    )
    p.add_argument("--predict-chunk", type=positive_int, default=d.predict_chunk,
                   help="sequences of a prediction run between two chat batches")  # fmt: skip
    p.add_argument("--max-attribution-residues", type=positive_int, default=d.max_attribution_residues,
                   help="residues one request may ask attribution over (memory grows with them)")  # fmt: skip
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.set_defaults(func=run_serve)
