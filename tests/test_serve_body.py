"""Request bodies against a live server: with Content-Length, chunked, too large, malformed."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

pytest.importorskip("fastapi")

from tests.serve_helpers import call, live_server, train_chat_ready_run  # noqa: E402

LIMIT = 4000


@pytest.fixture(scope="module")
def server():
    with live_server([str(train_chat_ready_run())], max_body_bytes=LIMIT) as url:
        yield url


def address(server: str) -> tuple[str, int]:
    host, port = server.removeprefix("http://").split(":")
    return host, int(port)


def post_chunked(server: str, path: str, parts: list[bytes]) -> tuple[int, dict]:
    """POST ``parts`` as the chunks of a chunked body, as http.client sends an iterable."""
    conn = http.client.HTTPConnection(*address(server), timeout=60)
    try:
        headers = {"Content-Type": "application/json"}
        conn.request("POST", path, iter(parts), headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def send_raw(server: str, request: bytes) -> tuple[int, bytes]:
    """Status and body of the answer to ``request``, bytes exactly as written."""
    with socket.create_connection(address(server), timeout=60) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    parts, at = [], 0
    for size in sizes:
        parts.append(data[at : at + size])
        at += size
    return [*parts, data[at:]]


def test_chunked_body_reads_as_the_same_body_with_content_length(server):
    text = {"model": "tiny", "text": "To be, or not to be, that is the question."}
    body = json.dumps(text).encode()
    expected = call(server + "/api/tokenize", "POST", text)
    assert expected[0] == 200 and len(expected[1]["tokens"]) == len(text["text"])
    assert post_chunked(server, "/api/tokenize", split(body, [1, 7, 20])) == expected
    assert post_chunked(server, "/api/tokenize", [body]) == expected

    request = {"model": "tiny", "prompt": "To be", "max_tokens": 6, "temperature": 0}
    status, answer = post_chunked(
        server, "/v1/completions", split(json.dumps(request).encode(), [9])
    )
    assert status == 200
    assert answer["choices"] == call(server + "/v1/completions", "POST", request)[1]["choices"]


def test_chunk_extensions_and_trailers_are_ignored(server):
    body = b'{"model": "tiny", "text": "To be"}'
    chunks = b"5;name=value\r\n" + body[:5] + b"\r\n" + b"%x\r\n" % (len(body) - 5)
    chunks += body[5:] + b"\r\n0\r\nX-Trailer: yes\r\n\r\n"
    head = b"POST /api/tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\n"
    status, answer = send_raw(server, head + b"Connection: close\r\n\r\n" + chunks)
    assert status == 200, answer
    assert [t["text"] for t in json.loads(answer)["tokens"]] == list("To be")


def padded(size: int) -> bytes:
    """A tokenize request of exactly ``size`` bytes."""
    empty = json.dumps({"model": "tiny", "text": ""}).encode()
    return json.dumps({"model": "tiny", "text": "a" * (size - len(empty))}).encode()


def test_chunked_body_at_the_limit_is_read(server):
    body = padded(LIMIT)
    status, answer = post_chunked(server, "/api/tokenize", split(body, [1000, 1000, 1000]))
    assert status == 200 and len(answer["tokens"]) == LIMIT - len(padded(0))


def test_chunked_body_over_the_limit_gets_the_same_413_as_content_length(server):
    body = padded(LIMIT + 1)
    with_length = call(server + "/api/tokenize", "POST", body)
    assert with_length[0] == 413 and with_length[1]["error"]["code"] == "body_too_large"
    assert post_chunked(server, "/api/tokenize", split(body, [1000, 1000, 1000, 1000])) == (
        with_length
    )
    assert call(server + "/health")[0] == 200  # still serving


def test_chunked_body_is_refused_as_soon_as_it_passes_the_limit(server):
    # The body never ends: the server must answer without waiting for the rest of it.
    head = b"POST /api/tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n" % 1000 + b"x" * 1000 + b"\r\n"
    status, answer = send_raw(server, head + chunk * 5)
    assert status == 413 and json.loads(answer)["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("size", [b"zz", b"-5", b"", b"5 5", b"fffffffffffffffffffffffff"])
def test_malformed_chunk_size_gets_400(server, size):
    head = b"POST /api/tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    status, _ = send_raw(server, head + size + b'\r\n{"model": "tiny", "text": "To"}\r\n0\r\n\r\n')
    assert status == 400
    assert call(server + "/health")[0] == 200  # still serving


def test_post_without_length_or_chunks_gets_411(server):
    head = b"POST /api/tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    status, answer = send_raw(server, head + b"Connection: close\r\n\r\n")
    assert status == 411
    error = json.loads(answer)["error"]
    assert error["code"] == "length_required" and "\n" not in error["message"]
    # A GET has no body to measure.
    status, answer = send_raw(
        server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200 and json.loads(answer)["status"] == "ok"
