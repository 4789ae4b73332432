"""Instruction datasets: task registry, English templates, conversation building, pretraining corpora."""
