"""Training: encoder pretraining and instruction tuning, one loop (loop.py) for both."""
