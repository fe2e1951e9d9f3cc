import pytest

from minigpt.config.sampling import SampleConfig
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.generate import (
    StopStrings,
    StreamDecoder,
    generate_samples,
    generate_text,
    prompt_ids,
    stream_text,
)
from minigpt.interop.loader import load_model


@pytest.fixture
def trained(trained_run):
    return trained_run


def test_seeded_samples_are_reproducible(trained):
    model, tok = load_model(trained, device="cpu")
    a = generate_text(model, tok, "To be", 30, seed=3)
    b = generate_text(model, tok, "To be", 30, seed=3)
    c = generate_text(model, tok, "To be", 30, seed=4)
    assert a == b and a != c
    assert a.startswith("To be") and len(a) == len("To be") + 30


def test_streamed_pieces_add_up_to_the_text(trained):
    model, tok = load_model(trained, device="cpu")
    pieces = []
    text = generate_text(model, tok, "", 20, seed=1, on_text=pieces.append)
    assert "".join(pieces) == text and len(pieces) == 20


def test_prompt_with_unknown_characters(trained):
    model, tok = load_model(trained, device="cpu")
    with pytest.raises(MiniGPTError, match=r"'Z' \(U\+005A\)"):
        generate_text(model, tok, "Zebra", 5)


def test_checkpoint_folder_is_self_contained(trained, tmp_path):
    import shutil

    from minigpt.checkpoint import checkpoint_dirs

    copy = tmp_path / "copied"
    shutil.copytree(checkpoint_dirs(trained)[-1], copy)
    model, tok = load_model(copy, device="cpu")
    assert len(generate_text(model, tok, "", 5, seed=0)) == 5


class ByteTokenizer(Tokenizer):
    """Raw UTF-8 bytes as ids: a multi-byte character spans several tokens."""

    kind = "bytes-test"
    vocab_size = 256

    def encode(self, text):
        return list(text.encode())

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")

    def to_json(self):
        return {}

    @classmethod
    def from_json(cls, data):
        return cls()


def test_stream_decoder_holds_back_split_characters():
    decoder = StreamDecoder(ByteTokenizer())
    pieces = [decoder.push(b) for b in "aə😀".encode()]
    assert pieces == ["a", "", "ə", "", "", "", "😀"]


class ChunkTokenizer(Tokenizer):
    """Each id is a fixed run of UTF-8 bytes; chunks cut characters anywhere, like byte BPE."""

    kind = "chunks-test"

    def __init__(self, chunks):
        self.chunks = chunks
        self.decoded_ids = 0  # total ids decoded: shows whether streaming is incremental

    @property
    def vocab_size(self):
        return len(self.chunks)

    def encode(self, text):
        raise NotImplementedError

    def decode(self, ids):
        self.decoded_ids += len(ids)
        return b"".join(self.chunks[i] for i in ids).decode("utf-8", errors="replace")

    def to_json(self):
        return {}

    @classmethod
    def from_json(cls, data):
        raise NotImplementedError


def stream(decoder, ids):
    pieces = [decoder.push(i) for i in ids]
    return pieces + [decoder.flush()]


def test_stream_decoder_joins_tokens_that_split_characters():
    text = "naïve 😀 кот — 東京 " * 50
    data = text.encode()
    # Chunks of 1 to 4 bytes with boundaries in the middle of characters.
    chunks, i, sizes = [], 0, [3, 1, 2, 4, 1]
    while i < len(data):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(data[i : i + size])
        i += size
    tok = ChunkTokenizer(chunks)
    pieces = stream(StreamDecoder(tok), range(len(chunks)))
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert tok.decoded_ids < 4 * len(chunks)  # incremental, not O(n^2)


def test_stream_decoder_emits_invalid_bytes_eventually():
    chunks = [b"a", b"\xe2", b"\x82", b"\x80", b"b", b"\xff"]
    ids = [0, 1, 2, 4] + [5] * 20 + [1, 2, 3]
    tok = ChunkTokenizer(chunks)
    pieces = stream(StreamDecoder(tok, max_window=8), ids)
    expected = b"".join(chunks[i] for i in ids).decode("utf-8", errors="replace")
    assert "".join(pieces) == expected
    assert pieces[-1] == ""  # the final euro sign was complete when its last byte came
    assert pieces[4] == "" and "\ufffd" in "".join(pieces[:12])  # held, then let go


def test_stop_strings_are_caught_across_pieces():
    stops = StopStrings(["\n\n", "END"])
    assert stops.push("Hello\n") == ("Hello", False)  # "\n" might start "\n\n"
    assert stops.push("there E") == ("\nthere ", False)
    assert stops.push("N") == ("", False)
    assert stops.push("D and more") == ("", True)
    other = StopStrings(["\n\n"])
    assert other.push("a\n") == ("a", False)
    assert other.push("\nb") == ("", True)
    tail = StopStrings(["xyz"])
    assert tail.push("abx") == ("ab", False) and tail.flush() == "x"


def test_stop_string_ends_the_sample(trained):
    model, tok = load_model(trained, device="cpu")
    free = generate_text(model, tok, "To", 60, temperature=1.0, seed=0)[2:]
    stop = free[10:12]
    cut = generate_text(model, tok, "To", 60, temperature=1.0, seed=0, stop=stop)[2:]
    assert cut == free[: free.index(stop)]
    assert stop not in cut


def test_samples_as_one_batch(trained):
    model, tok = load_model(trained, device="cpu")
    config = SampleConfig(max_new_tokens=25, num_samples=3, seed=5, temperature=1.0)
    texts = generate_samples(model, tok, "To be", config)
    assert len(texts) == 3 and all(len(t) == 25 for t in texts)
    assert len(set(texts)) == 3
    assert generate_samples(model, tok, "To be", config) == texts
    greedy = generate_samples(model, tok, "To be", config, temperature=0)
    assert greedy == [greedy[0]] * 3


def test_prompt_longer_than_block_size(trained):
    model, tok = load_model(trained, device="cpu")
    prompt = "To be, or not to be, that is the question:\n"  # block_size is 16
    assert len(prompt) > model.config.block_size
    texts = [
        generate_text(model, tok, prompt, 30, temperature=0, use_cache=cache)
        for cache in (True, False)
    ]
    assert texts[0] == texts[1] and texts[0].startswith(prompt)
    assert len(texts[0]) == len(prompt) + 30


def test_empty_prompt_and_zero_tokens(trained):
    model, tok = load_model(trained, device="cpu")
    assert len(generate_text(model, tok, "", 12, seed=2)) == 12
    assert generate_text(model, tok, "To be", 0) == "To be"


def test_prompt_that_encodes_to_nothing_starts_fresh():
    tok = ChunkTokenizer([b"a", b"b"])
    tok.encode = lambda text: []
    assert prompt_ids(tok, "\u200b") == [0]  # no eot and no "\n": the first id


def test_stream_text_yields_pieces(trained):
    model, tok = load_model(trained, device="cpu")
    pieces = list(stream_text(model, tok, "To", max_new_tokens=15, seed=9))
    assert len(pieces) == 15
    assert "To" + "".join(pieces) == generate_text(model, tok, "To", 15, seed=9)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(top_p=0.0), "top_p must be in"),
        (dict(min_p=1.5), "min_p must be in"),
        (dict(temperature=-1.0), "temperature must be a finite number >= 0"),
        (dict(temperature=float("inf")), "temperature must be a finite number >= 0"),
        (dict(temperature=float("nan")), "temperature must be a finite number >= 0"),
        (dict(top_p=float("nan")), "top_p must be in"),
        (dict(min_p=float("nan")), "min_p must be in"),
        (dict(top_k=-2), "top_k must be >= 0"),
        (dict(repetition_penalty=0.0), "repetition_penalty must be a finite number > 0"),
        (dict(repetition_penalty=float("inf")), "repetition_penalty must be a finite number"),
        (dict(context_shift=17), r"context_shift must be between 1 and block_size \(16\)"),
        (dict(stop=("",)), "stop string cannot be empty"),
    ],
)
def test_bad_settings_are_refused(trained, settings, message):
    model, tok = load_model(trained, device="cpu")
    with pytest.raises(MiniGPTError, match=message):
        generate_text(model, tok, "To", 5, **settings)


def test_prompt_ids_outside_the_model_vocabulary(trained):
    model, _ = load_model(trained, device="cpu")
    big = ChunkTokenizer([b"x"] * 500)
    big.encode = lambda text: [499]
    with pytest.raises(MiniGPTError, match="use the tokenizer the model was trained with"):
        generate_text(model, big, "x", 3)
