"""One module per tokenizer kind, behind ``base.Tokenizer``; ``minigpt.data.tokenizer`` is
the entry point (the registry of kinds and ``load_tokenizer``)."""
