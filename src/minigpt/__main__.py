"""``python -m minigpt`` is the same as the ``minigpt`` command (and what torchrun launches)."""

from minigpt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
