"""The export options by name: GGUF weight types and Hugging Face folder dtypes.

The exporters (``gguf.py``, ``hf_export.py``) import torch; ``minigpt export``'s parser offers
these names as choices (and in its --help) before anything imports torch, so they live here.
"""

QUANTS = ("f32", "f16", "q8_0")
HF_DTYPES = ("float32", "float16", "bfloat16")
