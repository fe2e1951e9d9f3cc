"""The model: the GPT itself (``gpt.py``), how it picks the next token (``sampling.py``) and
what it costs in parameters and FLOPs (``sizing.py``)."""

from minigpt.model.gpt import GPT, KVCache

__all__ = ["GPT", "KVCache"]
