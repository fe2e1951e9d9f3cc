"""minigpt: train a GPT language model from scratch on your own text.

The pipeline, one module per stage:

    prepare (text -> tokenizer + token shards) -> dataset (batches) -> model -> train
    -> checkpoint -> sample

Every stage is also a CLI command: ``minigpt prepare | train | sample | chat | demo``.
Fine-tuning on conversations: ``prepare_chat_dataset``, ``train`` with the ``sft`` preset,
``chat_completion`` (docs/sft.md).
"""

import torch as _torch

from minigpt._version import __version__, torch_too_old

if _message := torch_too_old(_torch.__version__):  # before any stage touches a newer API
    raise ImportError(_message)

from minigpt.config import ModelConfig, RunConfig, TrainConfig, load_config
from minigpt.config.sampling import SampleConfig
from minigpt.data.chat_prepare import prepare_chat_dataset
from minigpt.data.prepare import prepare_dataset
from minigpt.data.tokenizer import CharTokenizer, Tokenizer, load_tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.chat_completion import ChatReply, chat_completion, stream_chat
from minigpt.inference.generate import generate_samples, generate_text, stream_text
from minigpt.interop.loader import load_model
from minigpt.model import GPT
from minigpt.sweep.tokenizer_probe import ProbeConfig, prepare_auto, probe_tokenizers
from minigpt.training.trainer import train

__all__ = [
    "GPT",
    "CharTokenizer",
    "ChatReply",
    "MiniGPTError",
    "ProbeConfig",
    "ModelConfig",
    "RunConfig",
    "SampleConfig",
    "Tokenizer",
    "TrainConfig",
    "__version__",
    "chat_completion",
    "generate_samples",
    "generate_text",
    "load_config",
    "load_model",
    "load_tokenizer",
    "prepare_auto",
    "prepare_chat_dataset",
    "prepare_dataset",
    "probe_tokenizers",
    "stream_chat",
    "stream_text",
    "train",
]
