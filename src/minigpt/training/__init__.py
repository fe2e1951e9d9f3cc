"""Training runs: the trainer loop (``trainer.py``) and its parts (set-up, state, batches,
compile fallback, loss guard, stop rules and signals, callbacks, monitors, report), optimizers
and schedules, distributed training and its launcher, and memory planning."""
