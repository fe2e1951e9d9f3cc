"""The web application: the OpenAI-compatible API, the runs API, metrics and the web app.

``create_app`` builds a FastAPI app around models already loaded (``load_served``); its
lifespan starts each model's batching engine and stops it on shutdown. ``Guard`` is the one
gate every request passes: the API key (``Authorization: Bearer KEY``) on everything but
the page itself and ``/health``, and the body-size limit (413).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from minigpt._version import __version__
from minigpt.serve import openai_api, runs
from minigpt.serve.errors import error_response, install_error_handlers
from minigpt.serve.metrics import CONTENT_TYPE, ServerMetrics
from minigpt.serve.openai_api import ServerState
from minigpt.serve.registry import ServedModel
from minigpt.serve.settings import ServeConfig

OPEN_PATHS = ("/health",)  # and the web app's files: everything outside PROTECTED
PROTECTED = ("/v1/", "/api/", "/metrics")


class Guard:
    """API key and body size, checked before any endpoint runs (pure ASGI: streams untouched)."""

    def __init__(self, app: ASGIApp, config: ServeConfig, metrics: ServerMetrics) -> None:
        self.app, self.config, self.metrics = app, config, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status = {"code": 500}

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        problem = self._check(path, headers)
        if problem is not None:
            response = error_response(*problem)
            await response(scope, receive, counting_send)
        else:
            await self.app(scope, receive, counting_send)
        if path.startswith(PROTECTED) or path in OPEN_PATHS:
            label = path if path.startswith(("/v1/c", "/metrics", "/health")) else "other"
            self.metrics.requests.labels(label, str(status["code"])).inc()

    def _check(self, path: str, headers: dict[str, str]) -> tuple | None:
        key = self.config.api_key
        if key and path.startswith(PROTECTED):
            given = headers.get("authorization", "")
            token = given[7:] if given.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(token.encode(), key.encode()):
                why = "a wrong API key" if token else "no API key (Authorization: Bearer KEY)"
                return (
                    401,
                    f"this server needs an API key; the request has {why}",
                    None,
                    "invalid_api_key",
                )
        length = headers.get("content-length")
        limit = self.config.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return (
                413,
                f"the request body is over this server's limit of {limit} bytes",
                None,
                "body_too_large",
            )
        if length is None and "chunked" in headers.get("transfer-encoding", ""):
            return 411, "send the request body with a Content-Length", None, "length_required"
        return None


def create_app(config: ServeConfig, served: dict[str, ServedModel]) -> FastAPI:
    metrics = ServerMetrics(served)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for s in served.values():
            if s.engine.thread is None:
                s.engine.start()
        yield
        for s in served.values():
            s.engine.stop()

    app = FastAPI(
        title="minigpt", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.minigpt = ServerState(config, served, metrics)
    install_error_handlers(app)
    app.include_router(openai_api.router)
    app.include_router(runs.router)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": sorted(served), "version": __version__}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/api/info")
    async def info() -> dict:
        return {
            "version": __version__,
            "models": [s.describe() for s in served.values()],
            "runs": config.runs is not None,
        }

    static = resources.files("minigpt.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_middleware(Guard, config=config, metrics=metrics)
    return app
