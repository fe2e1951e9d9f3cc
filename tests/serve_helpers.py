"""A live minigpt server for tests: uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import functools
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from minigpt.inference.batching import BatchEngine
from minigpt.serve.app import create_app
from minigpt.serve.registry import ServedModel, load_served
from minigpt.serve.settings import ServeConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(
    models: list[str], runs: Path | None = None, loaded: dict | None = None, **limits
) -> Iterator[str]:
    """Yield the base URL of a running server; stop it (and its engines) afterwards.

    ``loaded``: name -> (model, tokenizer) already in memory, served beside ``models``.
    """
    import uvicorn

    config = ServeConfig(port=free_port(), runs=runs, device="cpu", **limits)
    served = load_served(models, config)
    for name, (model, tokenizer) in (loaded or {}).items():
        engine = BatchEngine(model, tokenizer, config.max_batch, config.max_queue)
        served[name] = ServedModel(name, "memory", model, tokenizer, engine, 0)
    app = create_app(config, served)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


CHAT_TEXT = "System: be brief\nUser: To be, or not to be?\nAssistant: That is the question.\n"


@functools.cache
def train_chat_ready_run() -> Path:
    """A tiny trained run whose characters include the plain chat turns' role names; trained
    once per test process (in a temporary folder) and only read afterwards."""
    root = Path(tempfile.mkdtemp(prefix="minigpt-serve-"))
    from minigpt.config import load_config
    from minigpt.data.prepare import prepare_dataset
    from minigpt.training.trainer import train
    from tests.conftest import SMALL_TEXT, TINY

    text = root / "small.txt"
    text.write_text(SMALL_TEXT + CHAT_TEXT * 20, encoding="utf-8")
    data = prepare_dataset([text], root / "ds", quiet=True)
    overrides = {**TINY, "data": str(data), "out_dir": str(root / "runs" / "tiny")}
    overrides.update(block_size=32, max_iters=80, eval_interval=40, checkpoint_interval=80, lr=3e-3)
    return train(load_config(overrides=overrides)).run_dir


def call(
    url: str, method: str = "GET", body: object = None, headers: dict | None = None
) -> tuple[int, object]:
    """(status, parsed JSON or text) of one plain HTTP request (stdlib only)."""
    import json
    import urllib.error
    import urllib.request

    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, kind = (
                response.status,
                response.read(),
                response.headers.get_content_type(),
            )
    except urllib.error.HTTPError as e:
        status, raw, kind = e.code, e.read(), e.headers.get_content_type()
    text = raw.decode("utf-8")
    return status, json.loads(text) if kind == "application/json" else text
