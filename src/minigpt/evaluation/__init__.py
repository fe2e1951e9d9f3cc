"""Measuring a model: loss, perplexity and bits per byte over a text or a dataset split."""
