"""Where a feature-encoder seqchat model loses accuracy: its heads, its router, or the decoder's readout (issue 13).

On the benchmark's own test examples (same tasks, `--max-per-task`, `--seed`, and the same hash-picked test
question for each example), per classification task (a pair task's heads read each sequence alone; their
probabilities are averaged):

- head, oracle route: the stage-1 head of the asked task, read straight from the encoder (no router, no decoder);
- head, question route: the head token the projector's router picks from the test question (no decoder);
- route accuracy: the share of test questions routed to the asked task's head;
- seqchat: the model's scored and free-answer MCC, read from a `seqchat eval` run folder (`--run`).

The gaps between the columns split the loss into head quality, routing and the decoder's readout.

    python benchmarks/readout_decomposition.py --model runs/seqchat-small --run runs/bench_v3/seqchat \
        --tasks promoter_300_all,tf_human_0 --max-per-task 100 --seed 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqchat.data.sampling import sample_examples
from seqchat.evaluation.metrics import mcc
from seqchat.modeling.model import SeqChatForConditionalGeneration
from seqchat.tasks.predict import _run_batches, class_keys
from seqchat.tasks.registry import get_task


def route_step(model: Any, task: str, n_classes: int):
    """A `_run_batches` step: per prompt, (share of its references routed to the asked head, routed class, oracle
    class).

    A pair task's prompt has one reference per sequence; each is read on its own encoder's head for the task
    and the class probabilities of those heads are averaged, as the decoder sees one probability per sequence.
    """

    def step(batch: dict[str, Any], idx: list[int]) -> list[tuple[float, int, int]]:
        per_row: dict[int, list[tuple[bool, torch.Tensor, torch.Tensor]]] = {}
        picks = model.route_picks(batch)
        for (enc, j), (_, picked), row in zip(batch["occurrences"], picks, batch["occurrence_rows"], strict=True):
            encoder = model.encoders[enc]
            target = encoder.route_index(task)
            if target is None:
                continue
            slots = model._encode_pieces(enc, batch["sequence_inputs"][enc])[j][:, -encoder.slots :]
            per_row.setdefault(row, []).append(
                (picked == target, slots[picked, :n_classes], slots[target, :n_classes])
            )
        out = []
        for row in sorted(per_row):
            hits, routed, oracle = zip(*per_row[row], strict=True)
            out.append((float(np.mean(hits)), int(torch.stack(routed).mean(0).argmax()),
                        int(torch.stack(oracle).mean(0).argmax())))  # fmt: skip
        return out

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a seqchat model folder with feature encoders (head_format probs)")
    p.add_argument("--run", help="the `seqchat eval` run folder of that model on the same examples")
    p.add_argument("--tasks", required=True)
    p.add_argument("--max-per-task", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_grad_enabled(False)
    model = SeqChatForConditionalGeneration.from_pretrained(args.model).eval()
    rows = []
    for task in args.tasks.split(","):
        spec = get_task(task)
        if spec.task_type not in ("binary", "multiclass"):
            continue
        encoders = [model.encoders[model.config.modalities[m]] for m in spec.inputs]
        if any(getattr(e, "head_format", None) != "probs" for e in encoders) or all(
            e.route_index(task) is None for e in encoders
        ):
            continue
        examples = sample_examples(task, "test", args.max_per_task, args.seed)
        keys = class_keys(task)
        y = np.array([keys.index(e.target) for e in examples])
        seqs, metas = [e.model_input for e in examples], [e.meta for e in examples]
        res = _run_batches(model, spec, seqs, metas, None, 16, None, route_step(model, task, len(keys)))
        hit, routed, oracle = (np.array(c) for c in zip(*res, strict=True))
        row: dict[str, Any] = {"task": task, "n": len(examples), "head_oracle": mcc(y, oracle),
                               "head_routed": mcc(y, routed), "route_accuracy": float(hit.mean())}  # fmt: skip
        done = Path(args.run) / "tasks" / f"{task}.json" if args.run else None
        if done is not None and done.exists():
            m = json.loads(done.read_text())["metrics"]
            row.update(seqchat_score=m.get("mcc"), seqchat_free=m.get("free_mcc"))
        rows.append(row)
        print(json.dumps(row), flush=True)

    def cell(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}"

    cols = ("head_oracle", "head_routed", "route_accuracy", "seqchat_score", "seqchat_free")
    print("\n| task | n | head, oracle route | head, question route | route accuracy | seqchat (scored) "
          "| seqchat (free answer) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['n']} | " + " | ".join(cell(r.get(c)) for c in cols) + " |")
    if rows:
        means = [np.mean([r[c] for r in rows if r.get(c) is not None])
                 if any(r.get(c) is not None for r in rows) else None
                 for c in cols]  # fmt: skip
        print(f"| mean ({len(rows)} tasks) | | " + " | ".join(cell(m) for m in means) + " |")
    print(f"\nmodel {args.model}; test examples: --max-per-task {args.max_per_task} --seed {args.seed}")


if __name__ == "__main__":
    main()
