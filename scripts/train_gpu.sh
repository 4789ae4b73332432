#!/bin/bash
# seqchat-small on one CUDA GPU (issue 13): the same recipe as `make train-small`, with stage 2 scaled up
# (4x the batch, bf16 autocast chosen by the loop on CUDA) and capped at 7 minutes of stage-2 wall time, so
# the whole script fits about 9 minutes on an H100-class GPU with the data already built. Resumable.
#   bash scripts/train_gpu.sh            # writes runs/seqchat-small-gpu (fp16 model folder + card)
set -euo pipefail
SEQCHAT=${SEQCHAT:-.venv/bin/seqchat}
OUT=${OUT:-runs/train/seqchat-small-gpu}
test -f runs/data/train/promoter_300_all.jsonl || $SEQCHAT data build --out runs/data --max-per-split 1500 --seed 0
$SEQCHAT train-heads --config src/seqchat/configs/heads/stage1.yaml --out runs/stage1
$SEQCHAT train --config src/seqchat/configs/train/seqchat-small.yaml --out-dir "$OUT" --batch-size 32 --max-steps 2400 \
  --max-time-s 420 --resume
$SEQCHAT export --run "$OUT" --heads runs/stage1 --out runs/seqchat-small-gpu
