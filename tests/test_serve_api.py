"""minigpt serve's API against a live server, through the official openai client."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from minigpt.cli import main as cli_main  # noqa: E402
from tests.serve_helpers import call, live_server, train_chat_ready_run  # noqa: E402

PROMPTS = ["To be", "Whether", "The slings", "Or to", "And by", "To die", "U", "fortune,"]


@pytest.fixture(scope="module")
def run():
    return train_chat_ready_run()


@pytest.fixture(scope="module")
def server(run):
    with live_server([str(run)], runs=run.parent, max_prompt_tokens=300, max_tokens=500) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def sample_cli(run, prompt: str, tokens: int, capsys, *extra: str) -> str:
    """What `minigpt sample` prints after the prompt."""
    capsys.readouterr()
    args = ["sample", str(run), "--prompt", prompt, "-m", str(tokens), *extra]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(prompt) and out.endswith("\n")
    return out[len(prompt) : -1]


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    status, body = call(server + "/health")
    assert status == 200 and body["status"] == "ok"


def test_greedy_completion_equals_minigpt_sample(run, client, capsys):
    # 60 tokens after a 5-token prompt pass the block of 32: the window slides as in sample.
    expected = sample_cli(run, "To be", 60, capsys, "--temperature", "0")
    got = client.completions.create(model="tiny", prompt="To be", max_tokens=60, temperature=0)
    assert got.choices[0].text == expected
    assert got.choices[0].finish_reason == "length"
    assert got.usage.prompt_tokens == 5 and got.usage.completion_tokens == 60


def test_seeded_sampling_equals_minigpt_sample(run, client, capsys):
    expected = sample_cli(
        run, "Or to", 30, capsys, "--temperature", "1", "--top-k", "10", "--seed", "3"
    )
    got = client.completions.create(
        model="tiny", prompt="Or to", max_tokens=30, temperature=1, seed=3, extra_body={"top_k": 10}
    )
    assert got.choices[0].text == expected


def test_streamed_text_equals_non_streamed(client):
    settings = dict(model="tiny", prompt="The slings", max_tokens=60, temperature=0.9, seed=11)
    whole = client.completions.create(**settings).choices[0].text
    chunks = list(client.completions.create(**settings, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole
    assert chunks[-1].choices[0].finish_reason == "length"
    assert len([c for c in chunks if c.choices and c.choices[0].text]) > 1  # really streamed


def test_stream_usage_and_n_choices(client):
    stream = client.completions.create(
        model="tiny",
        prompt="And by",
        max_tokens=8,
        temperature=1,
        seed=1,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = {0: "", 1: ""}
    for c in chunks[:-1]:
        texts[c.choices[0].index] += c.choices[0].text
    assert chunks[-1].usage.completion_tokens == 16 and chunks[-1].usage.prompt_tokens == 6
    separate = client.completions.create(
        model="tiny", prompt="And by", max_tokens=8, temperature=1, seed=2
    )
    assert texts[1] == separate.choices[0].text  # choice j uses seed + j


def test_stop_string_and_logprobs(client):
    free = client.completions.create(model="tiny", prompt="To be", max_tokens=30, temperature=0)
    text = free.choices[0].text
    stop = text[5:8]
    cut = client.completions.create(
        model="tiny", prompt="To be", max_tokens=30, temperature=0, stop=[stop]
    )
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    lp = client.completions.create(
        model="tiny", prompt="To be", max_tokens=5, temperature=0, logprobs=2
    )
    logprobs = lp.choices[0].logprobs
    assert "".join(logprobs.tokens) == text[:5]
    assert all(v <= 0 for v in logprobs.token_logprobs)
    assert all(len(top) == 2 for top in logprobs.top_logprobs)
    # greedy picks the likeliest token: the chosen one leads its alternatives
    assert all(
        max(top.values()) == pytest.approx(v)
        for top, v in zip(logprobs.top_logprobs, logprobs.token_logprobs, strict=True)
    )


def test_chat_completion_plain_turns(client):
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "To be, or not to be?"},
    ]
    reply = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=40, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert "\nUser:" not in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=40, temperature=0, stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == choice.message.content
    assert chunks[-1].choices[0].finish_reason == choice.finish_reason


def test_eight_concurrent_clients_each_get_their_own_answer(client):
    single = [
        client.completions.create(model="tiny", prompt=p, max_tokens=24 + 3 * i, temperature=0)
        .choices[0]
        .text
        for i, p in enumerate(PROMPTS)
    ]
    results: list[str | None] = [None] * len(PROMPTS)
    start = threading.Barrier(len(PROMPTS))

    def ask(i: int) -> None:
        start.wait()
        stream = client.completions.create(
            model="tiny", prompt=PROMPTS[i], max_tokens=24 + 3 * i, temperature=0, stream=True
        )
        results[i] = "".join(c.choices[0].text for c in stream)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == single
    assert len(set(single)) > 1  # the prompts really lead to different answers


def test_metrics_count_requests_and_tokens(server, client):
    client.completions.create(model="tiny", prompt="To be", max_tokens=3, temperature=0)
    status, text = call(server + "/metrics")
    assert status == 200
    assert 'minigpt_generated_tokens_total{model="tiny"}' in text
    assert 'minigpt_queue_depth{model="tiny"} 0.0' in text
    assert "minigpt_time_to_first_token_seconds_count" in text
    assert 'minigpt_requests_total{path="/v1/completions",status="200"}' in text
