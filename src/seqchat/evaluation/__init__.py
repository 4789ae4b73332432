"""Evaluation: experiments only (benchmark runs, systems and baselines, metrics, reports, gene function).

What belongs here: running systems over test subsamples and scoring them (`benchmark`, `systems`,
`metrics`, `baselines`, `specialist`, `homology`, `retrieval`), the reliability of calibration
(`reliability`) and the pages that report it all (`report`, `ablation`, `gene_report`). Runtime pieces
(answer parsing, calibration, task prediction) live in `seqchat.tasks`; argument parsing in `seqchat.cli`.
"""
