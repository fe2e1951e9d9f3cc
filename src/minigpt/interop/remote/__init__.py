"""The remote-code files written into a Hugging Face folder when no transformers class
computes a minigpt model exactly (``hf_remote``). They import only torch and transformers,
never minigpt: the folder must work where minigpt is not installed."""
