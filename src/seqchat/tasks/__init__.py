"""Tasks: the registry, the English question/answer templates, answer parsing, calibration, task prediction.

What belongs here: what a task is and how a model is asked and answered about it at run time (registry,
templates and their YAMLs, free-text answer parsing, candidate scoring with Platt calibration,
`predict_task`). Imports `seqchat.modeling` only; data loading, metrics and experiments live above.
"""
