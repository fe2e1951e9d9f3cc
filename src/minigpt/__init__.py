"""minigpt: train a GPT language model from scratch on your own text.

The pipeline, one module per stage:

    prepare (text -> tokenizer + token shards) -> dataset (batches) -> model -> train
    -> checkpoint -> sample

Every stage is also a CLI command: ``minigpt prepare | train | sample | chat | demo``.
"""

__version__ = "0.1.0"

from minigpt.config import ModelConfig, RunConfig, TrainConfig, load_config  # noqa: E402
from minigpt.errors import MiniGPTError  # noqa: E402
from minigpt.model import GPT  # noqa: E402
from minigpt.prepare import prepare_dataset  # noqa: E402
from minigpt.sample import (  # noqa: E402
    SampleConfig,
    generate_samples,
    generate_text,
    load_model,
    stream_text,
)
from minigpt.tokenizer import CharTokenizer, Tokenizer, load_tokenizer  # noqa: E402
from minigpt.train import train  # noqa: E402

__all__ = [
    "GPT",
    "CharTokenizer",
    "MiniGPTError",
    "ModelConfig",
    "RunConfig",
    "SampleConfig",
    "Tokenizer",
    "TrainConfig",
    "__version__",
    "generate_samples",
    "generate_text",
    "load_config",
    "load_model",
    "load_tokenizer",
    "prepare_dataset",
    "stream_text",
    "train",
]
