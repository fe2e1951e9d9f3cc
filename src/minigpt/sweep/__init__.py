"""Hyperparameter sweeps: the search space (``space``), the study runner (``runner``) and the
results report (``report``)."""
