"""The trainer and what it owns: time, batches, checkpoints, EMA, logs."""
