"""A request's generations as seen from the event loop: engine events in, a queue out.

The engine calls ``on_event`` on its own thread; ``Submission`` hands each event to the
asyncio loop (``call_soon_threadsafe``), so an endpoint awaits events without blocking the
server. One submission holds every choice of a request (``n`` times each prompt); cancelling
it (a client that went away, a failed submit) frees all their slots at the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from starlette.requests import Request as HTTPRequest

from minigpt.config.sampling import SampleConfig
from minigpt.inference.batching import Event, QueueFull, Request
from minigpt.serve.errors import APIError
from minigpt.serve.metrics import ServerMetrics
from minigpt.serve.registry import ServedModel


class Submission:
    """The choices of one API request, submitted to one model's engine."""

    def __init__(self, served: ServedModel, metrics: ServerMetrics) -> None:
        self.served = served
        self.metrics = metrics
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        self.requests: list[Request] = []
        self.started = time.perf_counter()
        self.first_token: dict[int, float] = {}

    def add(self, index: int, prompt_ids: list[int], config: SampleConfig, **options) -> None:
        """Submit choice ``index``; a full queue cancels what was submitted and gives 429."""

        def on_event(event: Event) -> None:  # on the engine thread
            # a closed loop (the server stopped) has nobody listening
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.queue.put_nowait, (index, event))

        try:
            request = self.served.engine.submit(Request(prompt_ids, config, on_event, **options))
        except QueueFull as e:
            self.cancel()
            raise APIError(429, str(e), code="queue_full") from None
        self.requests.append(request)
        self.metrics.prompt_tokens.labels(self.served.id).inc(len(prompt_ids))

    def cancel(self) -> None:
        for request in self.requests:
            if not request.cancelled:
                self.served.engine.cancel(request)

    async def events(self) -> AsyncIterator[tuple[int, list[Event]]]:
        """(choice index, events) until every choice has finished.

        Events that are already waiting are handed over together (consecutive ones of one
        choice in one list), so a server that falls behind writes fewer, larger chunks
        instead of falling further behind.
        """
        pending = len(self.requests)
        generated = self.metrics.generated.labels(self.served.id)
        while pending:
            ready = [await self.queue.get()]
            while not self.queue.empty():
                ready.append(self.queue.get_nowait())
            groups: list[tuple[int, list[Event]]] = []
            for index, event in ready:
                if event.token_id is not None:
                    generated.inc()
                    if index not in self.first_token:
                        self.first_token[index] = time.perf_counter()
                        ttft = self.first_token[index] - self.started
                        self.metrics.ttft.labels(self.served.id).observe(ttft)
                if event.finish is not None:
                    pending -= 1
                    if event.finish == "error":
                        raise APIError(500, f"generation failed: {event.error}")
                    if event.finish == "cancelled":
                        raise APIError(503, "the server is shutting down", code="cancelled")
                if groups and groups[-1][0] == index and groups[-1][1][-1].finish is None:
                    groups[-1][1].append(event)
                else:
                    groups.append((index, [event]))
            for group in groups:
                yield group

    async def watch(self, http: HTTPRequest, every: float = 0.2) -> None:
        """Cancel the choices as soon as the client disconnects (non-streaming requests)."""
        while True:
            if await http.is_disconnected():
                self.cancel()
                return
            await asyncio.sleep(every)
