"""Training runs: the trainer loop and its parts (state, set-up, guards, signals, callbacks),
optimizers and schedules, monitors, distributed training, and memory planning."""
