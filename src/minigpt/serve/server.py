"""Running the app: load the models once, warn about unsafe settings, serve until a signal.

On SIGINT or SIGTERM uvicorn stops accepting connections, lets streams in flight finish for
up to ``GRACE_SECONDS`` and cancels the rest (each cancelled stream frees its slot), then the
app's lifespan stops every engine. uvicorn would then re-raise the signal to kill the
process; a server asked to stop that stopped cleanly exits 0 instead (``_Server``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from minigpt.errors import MiniGPTError
from minigpt.serve.registry import load_served
from minigpt.serve.settings import ServeConfig

GRACE_SECONDS = 5


def warnings_for(config: ServeConfig) -> list[str]:
    """What an operator must hear before the server starts."""
    if config.loopback or config.api_key:
        return []
    bar = "!" * 78
    return [
        bar,
        f"WARNING: minigpt serve listens on {config.host}, reachable from other machines,",
        "WARNING: and has NO API KEY: anyone who can reach it can use your models and read",
        "WARNING: your runs. Set --api-key or MINIGPT_API_KEY, or bind to 127.0.0.1.",
        bar,
    ]


def _server_class():
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """uvicorn's handlers (a graceful stop; a second Ctrl-C forces it), not re-raised."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {
                sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                yield
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)

    return _Server


def serve(refs: list[str], config: ServeConfig, log_level: str = "warning") -> None:
    """Serve ``refs`` (runs, checkpoints, ``hf:DIR``, or ``NAME=PATH``) until interrupted."""
    import uvicorn

    from minigpt.serve.app import create_app

    config.validate()
    if not refs and config.runs is None:
        raise MiniGPTError("nothing to serve: name a model (RUN or hf:DIR) or --runs DIR")
    if config.runs is not None and refs == [] and not Path(config.runs).is_dir():
        raise MiniGPTError(f"runs folder {config.runs} does not exist")
    served = load_served(refs, config)
    for line in warnings_for(config):
        print(line, file=sys.stderr)
    app = create_app(config, served)
    server = _server_class()(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=log_level,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
    )
    shown = "[" + config.host + "]" if ":" in config.host else config.host
    models = ", ".join(served) or "none"
    runs = f"; runs: {config.runs}" if config.runs is not None else ""
    print(f"minigpt serve: http://{shown}:{config.port}/ (models: {models}{runs})", flush=True)
    server.run()
    print("minigpt serve: stopped", flush=True)
