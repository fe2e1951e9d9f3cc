"""What ``GET /metrics`` reports, in Prometheus' text format (prometheus_client)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from minigpt.serve.registry import ServedModel

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics:
    """Counters of one server (a registry of its own, so several servers in one process,
    as in the tests, do not share numbers)."""

    def __init__(self, served: dict[str, ServedModel]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "minigpt_requests", "HTTP requests answered", ["path", "status"], registry=r
        )
        self.prompt_tokens = Counter(
            "minigpt_prompt_tokens", "prompt tokens read", ["model"], registry=r
        )
        self.generated = Counter(
            "minigpt_generated_tokens", "tokens generated", ["model"], registry=r
        )
        self.ttft = Histogram(
            "minigpt_time_to_first_token_seconds",
            "from a request's arrival to its first generated token",
            ["model"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        queue = Gauge("minigpt_queue_depth", "requests waiting for a slot", ["model"], registry=r)
        active = Gauge("minigpt_active_sequences", "sequences being decoded", ["model"], registry=r)
        for name, s in served.items():
            queue.labels(name).set_function(lambda e=s.engine: e.queue_depth)
            active.labels(name).set_function(lambda e=s.engine: e.active)

    def render(self) -> bytes:
        return generate_latest(self.registry)
