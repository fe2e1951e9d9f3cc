"""Every bad request gets its status and an OpenAI-style JSON error; the server keeps going."""

from __future__ import annotations

import http.client
import json
import time

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from tests.serve_helpers import call, live_server, train_chat_ready_run  # noqa: E402

LIMITS = dict(max_prompt_tokens=50, max_tokens=100, max_n=3, max_body_bytes=4000)


@pytest.fixture(scope="module")
def run():
    return train_chat_ready_run()


@pytest.fixture(scope="module")
def server(run):
    with live_server([str(run)], runs=run.parent, **LIMITS) as url:
        yield url


def completion(**fields) -> dict:
    return {"model": "tiny", "prompt": "To be", "max_tokens": 4, **fields}


BAD = [
    ("POST", "/v1/completions", completion(model="nope"), 404, "model"),
    ("POST", "/v1/completions", {"prompt": "x"}, 400, "model"),
    ("POST", "/v1/completions", completion(temperature=-1), 400, "temperature"),
    ("POST", "/v1/completions", completion(top_p=0), 400, "top_p"),
    # json.dumps writes these as NaN and Infinity, which pydantic parses as floats
    ("POST", "/v1/completions", completion(temperature=float("nan")), 400, "temperature"),
    ("POST", "/v1/completions", completion(top_p=float("nan")), 400, "top_p"),
    ("POST", "/v1/completions", completion(min_p=float("nan")), 400, "min_p"),
    (
        "POST",
        "/v1/completions",
        completion(repetition_penalty=float("inf")),
        400,
        "repetition_penalty",
    ),
    ("POST", "/v1/completions", completion(max_tokens=101), 400, "max_tokens"),
    ("POST", "/v1/completions", completion(max_tokens=-1), 400, "max_tokens"),
    ("POST", "/v1/completions", completion(n=4), 400, "n"),
    ("POST", "/v1/completions", completion(prompt=["a", "b"], n=2), 400, "n"),
    ("POST", "/v1/completions", completion(prompt="To be " * 20), 400, "prompt"),
    ("POST", "/v1/completions", completion(prompt=[1, 2, 99999]), 400, "prompt"),
    ("POST", "/v1/completions", completion(prompt=[]), 400, "prompt"),
    ("POST", "/v1/completions", completion(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    ("POST", "/v1/completions", completion(stop=[""]), 400, None),
    ("POST", "/v1/completions", completion(logprobs=9), 400, "logprobs"),
    ("POST", "/v1/completions", b"{not json", 400, None),
    ("POST", "/v1/completions", completion(prompt="x" * 5000), 413, None),
    ("POST", "/v1/chat/completions", {"model": "tiny", "messages": []}, 400, "messages"),
    (
        "POST",
        "/v1/chat/completions",
        {"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]},
        400,
        "messages",
    ),
    (
        "POST",
        "/v1/chat/completions",
        {"model": "tiny", "messages": [{"role": "user", "content": "\u00e9"}]},
        400,
        None,
    ),
    ("GET", "/v1/completions", None, 405, None),
    ("GET", "/v1/nothing", None, 404, None),
    ("GET", "/v1/models/nope", None, 404, "model"),
    ("GET", "/api/runs/../../etc", None, 404, None),
    ("GET", "/api/runs/%2e%2e/%2e%2e/etc/passwd", None, 404, None),
    ("GET", "/api/runs/tiny/../../ds", None, 404, None),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "param"), BAD)
def test_bad_request_gets_status_and_json_error(server, method, path, body, status, param):
    got, answer = call(server + path, method, body)
    assert got == status, answer
    error = answer["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if param is not None:
        assert param in (error["param"] or "") or param in error["message"]
    ok, body = call(server + "/v1/completions", "POST", completion())
    assert ok == 200 and body["choices"][0]["finish_reason"] == "length"  # still serving


def test_openai_client_sees_typed_errors(server):
    client = openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="at most 100"):
        client.completions.create(model="tiny", prompt="To", max_tokens=1000)


def metric(server: str, name: str) -> float:
    _, text = call(server + "/metrics")
    line = next(line for line in text.splitlines() if line.startswith(name))
    return float(line.rsplit(" ", 1)[1])


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def open_stream(server: str, max_tokens: int = 100) -> http.client.HTTPConnection:
    """A streaming request whose first chunk has arrived (so its sequence is live)."""
    host, port = server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps(completion(max_tokens=max_tokens, stream=True, temperature=1))
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    response.fp.readline()  # the first `data:` line
    return conn


def test_a_client_that_disconnects_frees_its_slot(run):
    with live_server([str(run)], max_tokens=100_000) as server:
        conn = open_stream(server, max_tokens=100_000)
        wait_for(
            lambda: metric(server, 'minigpt_active_sequences{model="tiny"}') == 1, "a live slot"
        )
        conn.close()
        wait_for(
            lambda: metric(server, 'minigpt_active_sequences{model="tiny"}') == 0, "slot freed"
        )


def test_full_queue_gets_429_and_the_server_recovers(run):
    with live_server([str(run)], max_batch=1, max_queue=1, max_tokens=100_000) as server:
        running = open_stream(server, max_tokens=100_000)
        waiting = http.client.HTTPConnection(*server.removeprefix("http://").split(":"), timeout=60)
        body = json.dumps(completion(max_tokens=5, stream=True))
        waiting.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        wait_for(
            lambda: metric(server, 'minigpt_queue_depth{model="tiny"}') == 1, "a queued request"
        )
        status, answer = call(server + "/v1/completions", "POST", completion())
        assert status == 429 and answer["error"]["type"] == "rate_limit_error"
        running.close()  # frees the slot: the waiting request runs, the server takes new ones
        answer = waiting.getresponse()  # streams once the running request has gone
        assert answer.status == 200 and answer.read().endswith(b"data: [DONE]\n\n")
        waiting.close()
        status, _ = call(server + "/v1/completions", "POST", completion())
        assert status == 200


def test_api_key_required_when_set(run):
    with live_server([str(run)], api_key="s3cret") as server:
        assert call(server + "/v1/models")[0] == 401
        status, answer = call(server + "/v1/models", headers={"Authorization": "Bearer wrong"})
        assert status == 401 and answer["error"]["code"] == "invalid_api_key"
        assert call(server + "/api/runs")[0] == 401
        assert call(server + "/metrics")[0] == 401
        assert call(server + "/health")[0] == 200  # open: liveness probes carry no key
        assert call(server + "/")[0] == 200  # the page itself; it asks for the key
        client = openai.OpenAI(base_url=server + "/v1", api_key="s3cret", max_retries=0)
        assert client.completions.create(model="tiny", prompt="To", max_tokens=2).choices
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server + "/v1", api_key="bad", max_retries=0).models.list()
