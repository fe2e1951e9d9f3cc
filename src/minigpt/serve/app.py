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


BODY_METHODS = ("POST", "PUT", "PATCH")


class Guard:
    """API key and body size, checked before any endpoint runs (pure ASGI: streams untouched).

    A body comes with a Content-Length, checked against the limit before a byte is read, or
    chunked (``Transfer-Encoding: chunked``: streamed uploads, many clients and proxies).
    uvicorn's HTTP parser (httptools or h11, both well-kept) already decodes the chunks, chunk
    extensions and trailers, and answers a malformed chunk size with 400 itself, so there is
    no chunk parsing here: a chunked body is read whole before the endpoint runs, counting
    its decoded bytes, and refused with the same 413 the moment it passes the limit, so a
    client cannot make the server hold more than the limit. A POST with neither header has
    no body to read (411).
    """

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

        problem = self._check(scope["method"], path, headers)
        if problem is None and "content-length" not in headers and _chunked(headers):
            body = await self._read_chunked(receive)
            if body is None:
                return  # the client left, or sent a malformed chunk (uvicorn answered 400)
            if isinstance(body, bytes):
                receive = _replay(body, receive)
            else:
                problem = body
        if problem is not None:
            response = error_response(*problem)
            await response(scope, receive, counting_send)
        else:
            await self.app(scope, receive, counting_send)
        if path.startswith(PROTECTED) or path in OPEN_PATHS:
            label = path if path.startswith(("/v1/c", "/metrics", "/health")) else "other"
            self.metrics.requests.labels(label, str(status["code"])).inc()

    def _too_large(self) -> tuple:
        limit = self.config.max_body_bytes
        return (
            413,
            f"the request body is over this server's limit of {limit} bytes",
            None,
            "body_too_large",
        )

    def _check(self, method: str, path: str, headers: dict[str, str]) -> tuple | None:
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
        if length is not None and (
            not length.isdigit() or int(length) > self.config.max_body_bytes
        ):
            return self._too_large()
        if length is None and method in BODY_METHODS and not _chunked(headers):
            return (
                411,
                "send the request body with a Content-Length or Transfer-Encoding: chunked",
                None,
                "length_required",
            )
        return None

    async def _read_chunked(self, receive: Receive) -> bytes | tuple | None:
        """The decoded body; the 413 once it passes the limit; None if the client left."""
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.config.max_body_bytes:
                return self._too_large()
            if not message.get("more_body", False):
                return b"".join(parts)


def _chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the endpoint: the body already read, then the client's own messages
    (a streaming response listens there for the client leaving)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> dict:
        return pending.pop() if pending else await receive()

    return replay


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
