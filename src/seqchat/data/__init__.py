"""Data: the shared data's loaders and split rules, instruction datasets, corpora, user tasks and sampling.

What belongs here: reading the source files (`sources`, `genes`, `pairs` into `records.Example`), the
leakage-safe splits, `seqchat data build` datasets, pretraining corpora, user-registered tasks and seeded
subsamples. Imports `seqchat.modeling` and `seqchat.tasks`; never training, evaluation, serving or the CLI.
"""
