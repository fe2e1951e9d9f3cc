"""Continuous batching: many generation requests decoded together, each at its own pace.

A server that generated for one request after another would leave most of the hardware idle:
one decode step costs about the same for one sequence as for eight, because it is dominated
by reading the weights. ``BatchEngine`` runs one loop on its own thread:

1. requests that arrived since the last step take free slots of a ``SlotKVCache``; each
   prompt is run (prefill) alone, exactly as ``minigpt sample`` runs it, or as one batch
   with the other new prompts of its length; its first token is chosen;
2. one decode step runs the newest token of every other live request as one batch, each row
   at its own position and with its own mask;
3. each row's token is chosen with that request's own settings and random generator
   (``sample_next``), decoded to text (``TextStream``: stop strings, end-of-text, UTF-8) and
   sent to the request's ``on_event``; finished or cancelled requests leave at once, and the
   last live slot moves into the gap, so live slots stay packed at the front.

A request joins at the next step after it arrives and leaves as soon as it finishes: no one
waits for the longest request of a batch. Past ``block_size`` a sequence's window slides the
way ``generate_tokens`` slides it (``context_shift``), so greedy output is the same as
``minigpt sample --temperature 0`` for any length.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from minigpt.config.sampling import SampleConfig
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.generate import TextStream, make_generator
from minigpt.inference.memory import check_slots
from minigpt.model import GPT
from minigpt.model.sampling import sample_next, sampling_probs
from minigpt.model.slot_cache import SlotKVCache

log = logging.getLogger("minigpt.serve")


class QueueFull(MiniGPTError):
    """More requests are waiting than the engine accepts; the client should retry later."""


@dataclass(frozen=True)
class Event:
    """What one step produced for one request: a token and the text it released.

    ``text`` may be empty (an incomplete UTF-8 character or a possible stop string is held
    back). The last event of a request has ``finish`` set: ``"stop"`` (stop string or
    end-of-text), ``"length"`` (max_new_tokens reached), ``"cancelled"`` or ``"error"``.
    """

    text: str = ""
    token_id: int | None = None
    logprob: float | None = None
    top_logprobs: tuple[tuple[int, float], ...] = ()
    finish: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Request:
    """One generation: prompt token ids, the sampling settings and where events go.

    ``frequency_penalty`` and ``presence_penalty`` work as in OpenAI's API (subtracted from
    the logit of each token already generated, per occurrence and once); ``logprobs`` asks
    for the chosen token's log-probability and that many likeliest alternatives;
    ``stop_ids`` end the reply like end-of-text (a chat template's end-of-turn token).
    """

    prompt_ids: list[int]
    config: SampleConfig
    on_event: Callable[[Event], None]
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logprobs: int | None = None
    stop_ids: tuple[int, ...] = ()
    cancelled: bool = field(default=False, repr=False)
    submitted: float = field(default_factory=time.perf_counter, repr=False)


@dataclass
class _Live:
    """A request holding a slot: its tokens so far, its text stream and its generator."""

    request: Request
    stream: TextStream
    generator: torch.Generator
    ids: list[int]
    generated: int = 0


class BatchEngine:
    """Serves generation requests for one model with continuous batching on a thread."""

    def __init__(
        self, model: GPT, tokenizer: Tokenizer, max_batch: int = 8, max_queue: int = 64
    ) -> None:
        if max_batch < 1:
            raise MiniGPTError(f"max_batch must be >= 1, got {max_batch}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_queue = max_queue
        self.block_size = model.config.block_size
        param = next(model.parameters())
        self.device = param.device
        c = model.config
        if self.device.type == "cpu":  # the slots are allocated whole, now
            check_slots(c, max_batch, param.element_size())
        self.cache = SlotKVCache(
            max_batch,
            c.n_layer,
            c.n_head,
            c.n_embd // c.n_head,
            c.block_size,
            param.device,
            param.dtype,
        )
        self.waiting: deque[Request] = deque()
        self.live: list[_Live] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.thread: threading.Thread | None = None

    # -- the client side (any thread) --------------------------------------------------------

    def start(self) -> BatchEngine:
        self.thread = threading.Thread(target=self._loop, name="minigpt-batch", daemon=True)
        self.thread.start()
        return self

    def submit(self, request: Request) -> Request:
        """Queue a request; its events arrive on the engine thread through ``on_event``."""
        request.config.validate(self.block_size)
        vocab = self.model.config.vocab_size
        if not request.prompt_ids:
            raise MiniGPTError("the prompt has no tokens")
        if max(request.prompt_ids) >= vocab or min(request.prompt_ids) < 0:
            raise MiniGPTError(f"prompt token ids must be in [0, {vocab})")
        with self.cond:
            if self.stopping:
                raise QueueFull("the server is shutting down")
            if len(self.waiting) >= self.max_queue:
                raise QueueFull(f"{len(self.waiting)} requests are already waiting; retry later")
            self.waiting.append(request)
            self.cond.notify()
        return request

    def cancel(self, request: Request) -> None:
        """Stop a request (its client went away): its slot is freed before the next step."""
        with self.cond:
            request.cancelled = True
            if request in self.waiting:
                self.waiting.remove(request)
            self.cond.notify()

    def stop(self) -> None:
        """Finish the thread; requests still waiting or live end with ``cancelled``."""
        with self.cond:
            self.stopping = True
            self.cond.notify()
        if self.thread is not None:
            self.thread.join()

    @property
    def queue_depth(self) -> int:
        return len(self.waiting)

    @property
    def active(self) -> int:
        return len(self.live)

    def generate(self, request_ids: list[int], config: SampleConfig, **options) -> list[Event]:
        """Submit one request and wait for all its events (for scripts, tests, benchmarks)."""
        events: queue.Queue[Event] = queue.Queue()
        self.submit(Request(request_ids, config, events.put, **options))
        out = [events.get()]
        while out[-1].finish is None:
            out.append(events.get())
        return out

    # -- the engine thread -------------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self.cond:
                    while not (self.stopping or self.waiting or self.live):
                        self.cond.wait()
                    if self.stopping:
                        break
                    free = self.cache.slots - len(self.live)
                    admitted = [self.waiting.popleft() for _ in range(min(free, len(self.waiting)))]
                try:
                    self._step(admitted)
                except Exception as e:  # a bug must not hang every client: fail them, go on
                    log.exception("generation step failed")
                    for live in self.live:
                        self._emit(live, Event(finish="error", error=f"{type(e).__name__}: {e}"))
                    self.live.clear()
                    self.cache.reset()
        for r in [*self.waiting, *(live.request for live in self.live)]:
            r.on_event(Event(finish="cancelled", prompt_tokens=len(r.prompt_ids)))
        self.waiting.clear()
        self.live.clear()

    def _step(self, admitted: list[Request]) -> None:
        self._drop_cancelled()
        chosen: dict[int, torch.Tensor] = {}  # slot -> last-position logits (1, vocab)
        for request in admitted:
            if request.cancelled:
                continue
            if request.config.max_new_tokens == 0:
                n = len(request.prompt_ids)
                request.on_event(Event(finish="length", prompt_tokens=n))
                continue
            seed = request.config.seed
            live = _Live(
                request,
                TextStream(self.tokenizer, request.config.stop),
                make_generator(self.device, seed),
                list(request.prompt_ids),
            )
            self.live.append(live)
        fresh = [s for s in range(len(self.live)) if self.cache.lengths[s] == 0]
        chosen.update(self._prefill_new(fresh))
        decode = []
        for slot, live in enumerate(self.live):
            if slot in chosen:
                continue
            if self.cache.lengths[slot] == self.block_size:  # full: slide the window
                keep = self.block_size - live.request.config.context_shift + 1
                chosen[slot] = self._prefill(slot, live.ids[-keep:])
            else:
                decode.append(slot)
        logits = {**chosen, **self._decode(decode)}
        self._choose(logits)
        done = [slot for slot, live in enumerate(self.live) if live.stream.done]
        self._release(done)

    def _prefill(self, slot: int, ids: list[int]) -> torch.Tensor:
        """Run ``ids`` (at most a block) from position 0 into ``slot``; last logits (1, V)."""
        ids = ids[-self.block_size :]
        view = self.cache.slot_view(slot)
        idx = torch.tensor([ids], dtype=torch.long, device=self.device)
        logits, _ = self.model(idx, kv_cache=view, last_only=True)
        self.cache.set_length(slot, view.pos)
        return logits[:, -1, :]

    def _prefill_new(self, slots: list[int]) -> dict[int, torch.Tensor]:
        """Run the prompts of requests that just took ``slots``: one that arrived alone the
        way ``minigpt sample`` runs it, several of the same length as one batch."""
        by_length: dict[int, list[int]] = {}
        for s in slots:
            by_length.setdefault(len(self.live[s].ids[-self.block_size :]), []).append(s)
        out: dict[int, torch.Tensor] = {}
        for group in by_length.values():
            if len(group) == 1:
                out[group[0]] = self._prefill(group[0], self.live[group[0]].ids)
                continue
            self.cache.use(group)
            rows = [self.live[s].ids[-self.block_size :] for s in group]
            idx = torch.tensor(rows, dtype=torch.long, device=self.device)
            logits, _ = self.model(idx, kv_cache=self.cache, last_only=True)
            out.update({s: logits[i : i + 1, -1, :] for i, s in enumerate(group)})
        return out

    def _decode(self, slots: list[int]) -> dict[int, torch.Tensor]:
        """One batched step: each slot's newest token at its own position."""
        if not slots:
            return {}
        self.cache.use(slots)
        idx = torch.tensor([[self.live[s].ids[-1]] for s in slots], device=self.device)
        logits, _ = self.model(idx, kv_cache=self.cache, last_only=True)
        return {s: logits[i : i + 1, -1, :] for i, s in enumerate(slots)}

    def _choose(self, logits: dict[int, torch.Tensor]) -> None:
        """Pick each slot's next token with its own settings, then tell its client.

        Rows with the same truncation settings and no penalties are filtered and softmaxed as
        one batch (``sampling_probs``, what ``sample_next`` computes row by row); each row then
        draws with its own generator, so a seeded request gets the same tokens as alone.
        """
        groups: dict[tuple, list[int]] = {}
        for s in logits:
            r, c = self.live[s].request, self.live[s].request.config
            if c.repetition_penalty != 1.0 or r.frequency_penalty or r.presence_penalty:
                key: tuple = ("alone", s)
            elif c.temperature <= 0:
                key = ("greedy",)
            else:
                key = (c.temperature, c.top_k, c.top_p, c.min_p)
            groups.setdefault(key, []).append(s)
        for key, slots in groups.items():
            # only ids the tokenizer decodes: a padded vocabulary's extra rows map to no text
            rows = torch.cat([logits[s] for s in slots])[:, : self.tokenizer.vocab_size].float()
            if key[0] == "alone":
                tokens = [self._sample_penalised(self.live[slots[0]], rows)]
            elif key[0] == "greedy":  # what sample_next does at temperature 0
                tokens = rows.argmax(dim=-1).tolist()
            else:
                c = self.live[slots[0]].request.config
                probs = sampling_probs(
                    rows, c.temperature, c.top_k or None, top_p=c.top_p, min_p=c.min_p
                )
                tokens = [
                    torch.multinomial(probs[i : i + 1], 1, generator=self.live[s].generator).item()
                    for i, s in enumerate(slots)
                ]
            for i, (s, token) in enumerate(zip(slots, tokens, strict=True)):
                self._advance(self.live[s], token, *self._logprobs(self.live[s], rows[i], token))

    def _sample_penalised(self, live: _Live, row: torch.Tensor) -> int:
        """One row with OpenAI's frequency/presence penalties and minigpt's repetition penalty."""
        r, c = live.request, live.request.config
        if r.frequency_penalty or r.presence_penalty:
            generated = torch.tensor(live.ids[len(r.prompt_ids) :], dtype=torch.long)
            counts = torch.bincount(generated, minlength=row.size(-1))[None, : row.size(-1)]
            counts = counts.to(row.device)
            row = row - r.frequency_penalty * counts - r.presence_penalty * (counts > 0)
        history = None
        if c.repetition_penalty != 1.0:
            history = torch.tensor([live.ids], dtype=torch.long, device=row.device)
        token = sample_next(
            row,
            c.temperature,
            c.top_k or None,
            live.generator,
            top_p=c.top_p,
            min_p=c.min_p,
            repetition_penalty=c.repetition_penalty,
            history=history,
        )
        return int(token[0, 0])

    def _logprobs(
        self, live: _Live, row: torch.Tensor, token: int
    ) -> tuple[float | None, tuple[tuple[int, float], ...]]:
        """The chosen token's log-probability under the model (before temperature and
        truncation) and the ``logprobs`` likeliest alternatives, when the request asks."""
        wanted = live.request.logprobs
        if wanted is None:
            return None, ()
        logp = F.log_softmax(row.float(), dim=-1).reshape(-1)
        if not wanted:
            return logp[token].item(), ()
        top = torch.topk(logp, min(wanted, logp.numel()))
        return logp[token].item(), tuple(
            zip(top.indices.tolist(), top.values.tolist(), strict=True)
        )

    def _advance(
        self,
        live: _Live,
        token: int,
        logprob: float | None = None,
        top: tuple[tuple[int, float], ...] = (),
    ) -> None:
        live.ids.append(token)
        live.generated += 1
        if token in live.request.stop_ids:
            text, finish = live.stream.finish(), "stop"
        else:
            text = live.stream.push(token)
            finish = "stop" if live.stream.done else None
        if finish is None and live.generated >= live.request.config.max_new_tokens:
            text += live.stream.finish()
            finish = "length"
        self._emit(live, Event(text, token, logprob, top, finish))

    def _emit(self, live: _Live, event: Event) -> None:
        if event.finish is not None:
            live.stream.done = True
        usage = dict(prompt_tokens=len(live.request.prompt_ids), completion_tokens=live.generated)
        live.request.on_event(Event(**{**event.__dict__, **usage}))

    def _drop_cancelled(self) -> None:
        gone = [s for s, live in enumerate(self.live) if live.request.cancelled]
        for s in gone:
            self._emit(self.live[s], Event(finish="cancelled"))
        self._release(gone)

    def _release(self, slots: list[int]) -> None:
        """Free finished slots; the last live slot moves into each gap (packed slots)."""
        for slot in sorted(slots, reverse=True):
            last = len(self.live) - 1
            if slot != last:
                self.cache.move(last, slot)
                self.live[slot] = self.live[last]
            self.live.pop()
            self.cache.set_length(last, 0)
