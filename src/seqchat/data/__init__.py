"""Data: the shared data's loaders and split rules, instruction datasets, corpora, user tasks and sampling.

What belongs here: reading the source files (`sources/`: one module per source family, genes and pairs
included, into `records.Example`), the leakage-safe splits (`splits`), `seqchat data build` datasets,
pretraining corpora, user-registered tasks and seeded subsamples (`sampling`). Imports `seqchat.modeling`
and `seqchat.tasks`; never training, evaluation, serving or the CLI.
"""
