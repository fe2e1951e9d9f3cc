"""Searches that train models: hyperparameter sweeps (the search space ``space``, the study
runner ``runner``, the results report ``report``) and the tokenizer probe of
``prepare --tokenizer auto`` (``tokenizer_probe``)."""
