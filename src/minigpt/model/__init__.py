"""The model: the GPT itself (``gpt.py``), its cache for generation (``kv_cache.py``), how it
picks the next token (``sampling.py``) and what it costs in parameters and FLOPs (``sizing.py``)."""

from minigpt.model.gpt import GPT
from minigpt.model.kv_cache import KVCache

__all__ = ["GPT", "KVCache"]
