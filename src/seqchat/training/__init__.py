"""Training: encoder pretraining, the supervised stages, instruction tuning and export, one loop for all.

What belongs here: turning a YAML recipe into a model and a job (`builders`), the jobs (`pretrain`,
`supervised`, `heads`, `instruct`), the loop with checkpoints (`loop`) and shipping a run (`export`).
Imports the layers below (modeling, tasks, data) and evaluation's specialist pieces; argument parsing is in
`seqchat.cli.training`.
"""
