"""Default sizes of the data stages, in a module that imports nothing.

``minigpt prepare --help`` and ``minigpt tokenizer train --help`` show them; the stages that
use them import numpy, ftfy and the tokenizers (a third of a second), which a help text or an
argument error should not wait for.
"""

SHARD_TOKENS = 500_000_000  # tokens per shard file before prepare starts the next one
TOKENIZER_SAMPLE_BYTES = 100_000_000  # text a tokenizer trains on, sampled from the corpus
