"""How well the task-routed projector's router picks the asked task's head from the question (issue 13).

Trains only the router (no decoder pass) on the training questions of a `seqchat data build` folder, then
prints the share of validation questions (training phrasings) and test questions (held-out phrasings)
routed to their own task's head token, per arm, with the CPU seconds each arm took.

    python benchmarks/router_ablation.py --data runs/data --steps 3000
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections import Counter

import torch
import yaml

from seqchat.training.builders import build_model_for_training
from seqchat.training.instruct import InstructJob, load_records

ARMS = {
    "mean+max of question embeddings": {"word_weights": False},
    "mean+max + learned word weights": {"word_weights": True, "ngram_buckets": 0},
    "+ hashed token n-grams (shipped)": {"word_weights": True, "ngram_buckets": 32768},
}


def print_confusion(job: InstructJob, records: dict, per_task: int) -> None:
    """Per task with a routing error: its held-out accuracy and the heads its questions went to instead."""
    by_task: dict[str, list[str]] = {}
    for task, enc, target, picked in job.route_picks(records, per_task):
        encoder = job.model.encoders[enc]
        first = encoder.route_index(encoder.tasks[0])
        name = encoder.tasks[picked - first] if picked >= first else f"token {picked}"
        by_task.setdefault(task, []).append("" if picked == target else name)
    for task, wrong in sorted(by_task.items()):
        misses = [w for w in wrong if w]
        if misses:
            top = Counter(misses).most_common(3)
            print(f"  {task}: {1 - len(misses) / len(wrong):.2f} held-out; instead {top}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="src/seqchat/configs/train/seqchat-small.yaml")
    p.add_argument("--data", default="runs/data")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--per-task", type=int, default=20, help="questions per task in each accuracy")
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated arms to run")
    p.add_argument("--confusion", action="store_true", help="per task: held-out accuracy and the heads picked instead")
    args = p.parse_args()
    with open(args.config) as fh:
        raw = yaml.safe_load(fh)
    train = load_records(args.data, "train")
    valid = load_records(args.data, "valid", max_per_task=args.per_task)
    test = load_records(args.data, "test", max_per_task=args.per_task)
    rows = []
    for arm, override in ARMS.items():
        if arm not in args.arms.split(","):
            continue
        cfg = copy.deepcopy(raw["model"])
        cfg["projector"] = {**cfg["projector"], **override}
        torch.manual_seed(0)
        model = build_model_for_training(cfg)
        job = InstructJob(model=model, train=train, valid=valid, batch_size=args.batch_size)
        t0 = time.process_time()
        warm = job.route_warmup(args.steps, args.lr)
        rows.append({"arm": arm, "valid_route_accuracy": round(warm["valid_route_accuracy"], 3),
                     "test_route_accuracy": round(job.route_accuracy(test, args.per_task), 3),
                     "last_loss": round(warm["last_loss"], 3), "cpu_s": round(time.process_time() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
        if args.confusion:
            print_confusion(job, test, args.per_task)
    print("\n| arm | validation questions | held-out test phrasings | CPU s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['arm']} | {r['valid_route_accuracy']:.3f} | {r['test_route_accuracy']:.3f} | {r['cpu_s']} |")
    print(f"\n{args.steps} router steps × batch {args.batch_size}, lr {args.lr}, {args.per_task} questions per task, "
          "seed 0")


if __name__ == "__main__":
    main()
