"""How a server runs: address, key and the limits that keep one client from hurting the rest."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from minigpt.errors import MiniGPTError

API_KEY_ENV = "MINIGPT_API_KEY"


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``minigpt serve`` takes besides the models; each field is a flag."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    runs: Path | None = Path("runs")
    device: str = "auto"
    quantize: str = (
        "none"  # int8 / int4 / int8-dynamic: quantized linear layers on the CPU (model/quantize.py)
    )
    max_batch: int = 8  # sequences decoded together per model (KV cache slots)
    max_queue: int = 64  # requests waiting for a slot before new ones get 429
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    max_prompt_tokens: int = 8192  # per prompt, before the window slides
    max_tokens: int = 4096  # the largest max_tokens a request may ask for
    max_n: int = 8  # the most choices one request may ask for
    default_max_tokens: int = 16  # /v1/completions without max_tokens (OpenAI's default)
    default_chat_max_tokens: int = 256  # /v1/chat/completions without max_tokens

    def validate(self) -> None:
        for name in ("max_batch", "max_queue", "max_body_bytes", "max_prompt_tokens", "max_n"):
            if getattr(self, name) < 1:
                raise MiniGPTError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.port <= 65535:
            raise MiniGPTError(f"port must be in [0, 65535], got {self.port}")

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the server."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def api_key_from_env(given: str | None) -> str | None:
    """``--api-key`` wins; else ``MINIGPT_API_KEY``; an empty key means none."""
    key = given if given is not None else os.environ.get(API_KEY_ENV)
    return key or None
