import pytest

from minigpt.errors import MiniGPTError
from minigpt.sample import StreamDecoder, generate_text, load_model
from minigpt.tokenizer import Tokenizer
from minigpt.train import train


@pytest.fixture
def trained(tiny_config):
    return train(tiny_config()).run_dir


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
