"""The OpenAI-compatible endpoints: models, completions and chat completions.

Each request becomes one ``Submission`` of ``n`` choices per prompt to the model's batching
engine; the answer is either one JSON body or server-sent events in OpenAI's chunk format
ending with ``data: [DONE]``. A streaming client that goes away cancels its choices when the
next chunk cannot be written; a waiting non-streaming one is noticed within a fraction of a
second (``Submission.watch``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.requests import Request as HTTPRequest

from minigpt.config.sampling import SampleConfig
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.batching import Event
from minigpt.inference.chat_format import render_chat
from minigpt.inference.generate import prompt_ids
from minigpt.serve.errors import APIError
from minigpt.serve.jobs import Submission
from minigpt.serve.metrics import ServerMetrics
from minigpt.serve.registry import ServedModel
from minigpt.serve.schemas import ChatRequest, CompletionRequest, SamplingFields
from minigpt.serve.settings import ServeConfig

router = APIRouter()
MAX_STOPS = 4  # as OpenAI


@dataclass
class ServerState:
    config: ServeConfig
    served: dict[str, ServedModel]
    metrics: ServerMetrics

    def model(self, name: str) -> ServedModel:
        if name not in self.served:
            known = ", ".join(sorted(self.served)) or "none"
            raise APIError(
                404,
                f"the model {name!r} does not exist (served: {known})",
                "model",
                "model_not_found",
            )
        return self.served[name]


def server_state(http: HTTPRequest) -> ServerState:
    return http.app.state.minigpt


def _settings(st: ServerState, body: SamplingFields, max_tokens: int | None, default: int):
    """One ``SampleConfig`` per choice (seeds ``seed, seed+1, ...``), checked against limits."""
    limit = st.config.max_tokens
    tokens = default if max_tokens is None else max_tokens
    if tokens > limit:
        raise APIError(
            400, f"max_tokens is {tokens}; this server allows at most {limit}", "max_tokens"
        )
    if len(body.stops()) > MAX_STOPS:
        raise APIError(400, f"at most {MAX_STOPS} stop sequences", "stop")
    base = SampleConfig(
        max_new_tokens=tokens,
        temperature=body.temperature,
        top_k=body.top_k,
        top_p=body.top_p,
        min_p=body.min_p,
        repetition_penalty=body.repetition_penalty,
        stop=body.stops(),
        seed=body.seed,
    )
    try:
        base.validate()
    except MiniGPTError as e:
        raise APIError(400, str(e)) from None
    seeds = [None if body.seed is None else body.seed + j for j in range(body.n)]
    return [SampleConfig(**{**base.__dict__, "seed": s}) for s in seeds]


def _check_prompt(st: ServerState, ids: list[int]) -> list[int]:
    if len(ids) > st.config.max_prompt_tokens:
        raise APIError(
            400,
            f"the prompt has {len(ids)} tokens; this server allows at most "
            f"{st.config.max_prompt_tokens}",
            "prompt",
            "context_length_exceeded",
        )
    return ids


def _completion_prompts(tokenizer: Tokenizer, prompt) -> list[list[int]]:
    """``prompt`` as OpenAI takes it: a string, strings, token ids, or lists of token ids."""
    if isinstance(prompt, str):
        return [prompt_ids(tokenizer, prompt)]
    if not prompt:
        raise APIError(400, "prompt must not be an empty list", "prompt")
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]
    return [prompt_ids(tokenizer, p) if isinstance(p, str) else list(p) for p in prompt]


def _submit(st, served, prompts, configs, body, logprobs, stop_ids=()) -> Submission:
    if len(prompts) * len(configs) > st.config.max_n:
        raise APIError(400, f"at most {st.config.max_n} choices per request", "n")
    sub = Submission(served, st.metrics)
    options = dict(
        frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty,
        logprobs=logprobs,
        stop_ids=tuple(stop_ids),
    )
    try:
        for i, ids in enumerate(prompts):
            for j, config in enumerate(configs):
                sub.add(i * len(configs) + j, _check_prompt(st, ids), config, **options)
    except MiniGPTError as e:
        sub.cancel()
        raise APIError(400, str(e), "prompt") from None
    return sub


def _usage(prompts: list[list[int]], events: list[Event]) -> dict:
    done = [e for e in events if e.finish is not None]
    prompt = sum(len(p) for p in prompts)
    completion = sum(e.completion_tokens for e in done)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion_logprobs(tokenizer: Tokenizer, events: list[Event], offset: int = 0) -> dict:
    tokens = [e for e in events if e.token_id is not None and e.logprob is not None]
    strings = [tokenizer.decode([e.token_id]) for e in tokens]
    offsets = [offset + sum(len(s) for s in strings[:i]) for i in range(len(strings))]
    top = [{tokenizer.decode([t]): lp for t, lp in e.top_logprobs} for e in tokens]
    return {
        "tokens": strings,
        "token_logprobs": [e.logprob for e in tokens],
        "top_logprobs": top,
        "text_offset": offsets,
    }


def _chat_logprobs(tokenizer: Tokenizer, events: list[Event]) -> dict:
    def entry(token: int, logprob: float) -> dict:
        text = tokenizer.decode([token])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    content = [
        {**entry(e.token_id, e.logprob), "top_logprobs": [entry(t, lp) for t, lp in e.top_logprobs]}
        for e in events
        if e.token_id is not None and e.logprob is not None
    ]
    return {"content": content}


async def _collect(sub: Submission, http: HTTPRequest) -> dict[int, list[Event]]:
    watcher = asyncio.create_task(sub.watch(http))
    try:
        out: dict[int, list[Event]] = {}
        async for index, events in sub.events():
            out.setdefault(index, []).extend(events)
        return out
    finally:
        watcher.cancel()
        sub.cancel()


def _sse(sub: Submission, chunks: AsyncIterator[dict]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk)}\n\n"
        except APIError as e:
            error = {"message": e.message, "type": "server_error", "param": None, "code": e.code}
            yield f"data: {json.dumps({'error': error})}\n\n"
        finally:
            sub.cancel()  # a client gone mid-stream frees its slots here
        yield "data: [DONE]\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def _stream(
    sub: Submission,
    make: Callable[[int, Event], dict | None],
    prompts,
    include_usage: bool,
    head: dict,
    first: list[dict] = (),
) -> AsyncIterator[dict]:
    finals: list[Event] = []
    for choice in first:
        yield {**head, "choices": [choice]}
    async for index, events in sub.events():
        finals += [e for e in events if e.finish is not None]
        choice = make(index, events)
        if choice is not None:
            yield {**head, "choices": [choice]}
    if include_usage:
        yield {**head, "choices": [], "usage": _usage(prompts, finals)}


def _head(kind: str, served: ServedModel) -> dict:
    prefix = "cmpl" if kind == "text_completion" else "chatcmpl"
    return {
        "id": f"{prefix}-{uuid.uuid4().hex[:24]}",
        "object": kind,
        "created": int(time.time()),
        "model": served.id,
    }


@router.get("/v1/models")
async def list_models(http: HTTPRequest) -> dict:
    st = server_state(http)
    return {"object": "list", "data": [s.describe() for s in st.served.values()]}


@router.get("/v1/models/{name:path}")
async def get_model(name: str, http: HTTPRequest) -> dict:
    return server_state(http).model(name).describe()


@router.post("/v1/completions")
async def completions(body: CompletionRequest, http: HTTPRequest):
    st = server_state(http)
    served = st.model(body.model)
    tok = served.tokenizer
    prompts = _completion_prompts(tok, body.prompt)
    configs = _settings(st, body, body.max_tokens, st.config.default_max_tokens)
    sub = _submit(st, served, prompts, configs, body, body.logprobs)
    echo = [tok.decode(p) if body.echo else "" for p in prompts]
    n = len(configs)
    head = _head("text_completion", served)
    if body.stream:

        def make(index: int, events: list[Event]) -> dict | None:
            text, finish = "".join(e.text for e in events), events[-1].finish
            wants = body.logprobs is not None and any(e.token_id is not None for e in events)
            if not (text or wants or finish):
                return None
            lp = _completion_logprobs(tok, events) if wants else None
            return {"index": index, "text": text, "logprobs": lp, "finish_reason": finish}

        first = [
            {"index": i, "text": echo[i // n], "logprobs": None, "finish_reason": None}
            for i in range(len(prompts) * n)
            if echo[i // n]
        ]
        return _sse(sub, _stream(sub, make, prompts, body.include_usage, head, first))
    out = await _collect(sub, http)
    choices = []
    for index in sorted(out):
        events = out[index]
        prefix = echo[index // n]
        lp = None if body.logprobs is None else _completion_logprobs(tok, events, len(prefix))
        text = prefix + "".join(e.text for e in events)
        choices.append(
            {"index": index, "text": text, "logprobs": lp, "finish_reason": events[-1].finish}
        )
    all_events = [e for events in out.values() for e in events]
    return {**head, "choices": choices, "usage": _usage(prompts, all_events)}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, http: HTTPRequest):
    st = server_state(http)
    served = st.model(body.model)
    tok = served.tokenizer
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in body.messages
    ]
    requested = (
        body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    )
    try:
        chat = render_chat(tok, messages)
    except MiniGPTError as e:
        raise APIError(400, str(e), "messages") from None
    configs = [
        dataclasses.replace(c, stop=(*chat.stop, *c.stop))
        for c in _settings(st, body, requested, st.config.default_chat_max_tokens)
    ]
    logprobs = (body.top_logprobs or 0) if body.logprobs else None
    prompts = [chat.ids]
    sub = _submit(st, served, prompts, configs, body, logprobs, chat.stop_ids)
    head = _head("chat.completion", served)
    if body.stream:
        head["object"] = "chat.completion.chunk"

        def make(index: int, events: list[Event]) -> dict | None:
            text, finish = "".join(e.text for e in events), events[-1].finish
            wants = logprobs is not None and any(e.token_id is not None for e in events)
            if not (text or wants or finish):
                return None
            delta = {"content": text} if text else {}
            lp = _chat_logprobs(tok, events) if wants else None
            return {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish}

        first = [
            {
                "index": i,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
            for i in range(len(configs))
        ]
        return _sse(sub, _stream(sub, make, prompts, body.include_usage, head, first))
    out = await _collect(sub, http)
    choices = []
    for index in sorted(out):
        events = out[index]
        message = {"role": "assistant", "content": "".join(e.text for e in events)}
        lp = _chat_logprobs(tok, events) if logprobs is not None else None
        choices.append(
            {"index": index, "message": message, "logprobs": lp, "finish_reason": events[-1].finish}
        )
    all_events = [e for events in out.values() for e in events]
    return {**head, "choices": choices, "usage": _usage(prompts, all_events)}


@router.post("/api/tokenize")
async def tokenize(payload: dict, http: HTTPRequest) -> dict:
    """Token ids and their text, for the web app's token boundaries."""
    served = server_state(http).model(str(payload.get("model", "")))
    text = payload.get("text", "")
    if not isinstance(text, str):
        raise APIError(400, "text must be a string", "text")
    ids = served.tokenizer.encode(text) if text else []
    return {"tokens": [{"id": i, "text": served.tokenizer.decode([i])} for i in ids]}
