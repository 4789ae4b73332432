.PHONY: install test lint gene-ablation benchmark train-heads train-small
SEQCHAT ?= .venv/bin/seqchat
ARMS ?= perceiver_frozen mlp_pooled_frozen perceiver_lora mlp_tokens_frozen
ABLATION_N ?= 100
BENCH_TASKS ?= all
BENCH_N ?= 100

install:
	bash scripts/install.sh
test:
	.venv/bin/python -m pytest -q
lint:
	.venv/bin/ruff check src tests benchmarks
# issue 7: LoRA vs frozen decoder and window pooling vs all tokens on the gene tasks (src/seqchat/configs/train/gene_ablation.yaml);
# resumable (rerun after an interruption), then the gene-function section of docs/BENCHMARKS.md is re-rendered
gene-ablation:
	test -d runs/data_gene || $(SEQCHAT) data build --out runs/data_gene --tasks gene_description gene_ec --max-per-split 3000 --seed 0 --no-multi
	for arm in $(ARMS); do \
	  $(SEQCHAT) train --config src/seqchat/configs/train/gene_ablation.yaml --arm $$arm --resume && \
	  $(SEQCHAT) eval --model runs/gene_ablation/$$arm/final --tasks gene_description,gene_ec --max-per-task $(ABLATION_N) \
	    --seed 0 --max-new-tokens 64 --calibration-train 0 --no-plots --resume --out runs/gene_ablation/$$arm/eval || exit 1; \
	done
	$(SEQCHAT) report --runs runs/bench10 --out docs/BENCHMARKS.md --gene-ablation runs/gene_ablation
# issue 12: every system on the same >=100 test examples per task, then docs/BENCHMARKS.md, docs/benchmarks.json and
# docs/benchmark_predictions/ (resumable: rerun after an interruption; BENCH_TASKS=a,b for a subset)
benchmark:
	$(SEQCHAT) benchmark --tasks $(BENCH_TASKS) --max-per-task $(BENCH_N) --runs runs/bench100 --report docs/BENCHMARKS.md --resume
# issue 13, stage 1: k-mer feature encoders and per-task heads (no decoder involved; resumable per task)
train-heads:
	$(SEQCHAT) train-heads --config src/seqchat/configs/heads/stage1.yaml --out runs/stage1
# issue 13: the shipped model from scratch on a CPU (about 2 h on 2 cores; every step resumable: rerun after an
# interruption): data build, stage 1 (k-mer feature encoders + per-task heads), stage 2 (task-routed projector
# through the frozen decoder), export (fp16 folder, model card, training curves). SHIP= sets the export folder.
SHIP ?= runs/seqchat-small
train-small:
	test -f runs/data/train/promoter_300_all.jsonl || $(SEQCHAT) data build --out runs/data --max-per-split 1500 --seed 0
	$(SEQCHAT) train-heads --config src/seqchat/configs/heads/stage1.yaml --out runs/stage1
	$(SEQCHAT) train --config src/seqchat/configs/train/seqchat-small.yaml --resume
	$(SEQCHAT) export --run runs/train/seqchat-small --heads runs/stage1 --out $(SHIP)
