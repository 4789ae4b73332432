"""How much of a pair task's signal one sequence's stage-1 features carry (issue 13: heads for pair tasks).

The feature encoders read each sequence alone, so a pair task's answer has to come from per-sequence heads.
For each pair task this fits a logistic regression on the stage-1 standardised features of: both sequences
concatenated (what the k-mer baseline does), both summed (one weight vector shared by two same-modality
roles: a head each occurrence can apply to its own sequence, the logits adding up), and each role alone;
and prints the validation MCC (best C of a small grid).

    python benchmarks/pair_heads.py --heads runs/stage1 --max-train 3000
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from seqchat.evaluation.metrics import mcc
from seqchat.modeling.features import load_feature_encoder
from seqchat.tasks.registry import get_task
from seqchat.training.heads import HeadsConfig, targets, task_examples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heads", default="runs/stage1", help="a `seqchat train-heads` folder")
    p.add_argument("--tasks", default="antibody_neutralization,rna_protein_interaction")
    p.add_argument("--max-train", type=int, default=3000)
    args = p.parse_args()
    cfg = HeadsConfig(max_train=args.max_train)
    readers = {m: name for name, e in cfg.encoders.items() for m in e["modalities"]}
    encoders = {m: load_feature_encoder({"kind": "features", "init_from": f"{args.heads}/{e}"}).eval()
                for m, e in readers.items()}  # fmt: skip
    print("| task | features | train | valid | validation MCC |\n|---|---|---|---|---|")
    for task in args.tasks.split(","):
        spec = get_task(task)
        train, valid = task_examples(task, cfg)

        def feats(rows: list, spec=spec) -> list[np.ndarray]:
            with torch.no_grad():
                return [
                    encoders[m].head_inputs([e.sequences[i] for e in rows]).numpy() for i, m in enumerate(spec.inputs)
                ]

        ftr, fva = feats(train), feats(valid)
        y, yv = targets(task, train), targets(task, valid)
        arms = {"both, concatenated": (np.hstack(ftr), np.hstack(fva))}
        if spec.inputs[0] == spec.inputs[1]:
            arms["both, summed (shared weights)"] = (ftr[0] + ftr[1], fva[0] + fva[1])
        for i, role in enumerate(spec.roles):
            arms[f"{role} alone"] = (ftr[i], fva[i])
        for name, (x, xv) in arms.items():
            best = max(mcc(yv, LogisticRegression(C=c, max_iter=500).fit(x, y).predict(xv))
                       for c in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2))  # fmt: skip
            print(f"| {task} | {name} | {len(train)} | {len(valid)} | {best:.3f} |", flush=True)


if __name__ == "__main__":
    main()
