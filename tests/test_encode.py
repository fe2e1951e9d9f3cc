import numpy as np

from minigpt.data.clean import CleanConfig
from minigpt.data.encode import Pool, batches, process
from minigpt.data.sources import Piece
from minigpt.data.tokenizer import CharTokenizer


def test_batches_group_pieces_by_size():
    pieces = [Piece("x" * n, "s") for n in (3, 3, 5, 1, 9, 2)]
    groups = list(batches(pieces, chars=6))
    assert [[len(p.text) for p in g] for g in groups] == [[3, 3], [5, 1], [9], [2]]


def test_process_cleans_hashes_and_encodes(tmp_path):
    tok = CharTokenizer.train(["Gün abc"])
    path = str(tok.save(tmp_path))
    pieces = [Piece("GÃ¼n", "a"), Piece("abc", "b", first=True, last=False), Piece("  ", "c")]
    batch = process(pieces, CleanConfig(), path, "<u2")
    assert batch.lengths == [3, 3, 2] and batch.ids.dtype == np.uint16
    assert tok.decode(batch.ids[:3].tolist()) == "Gün"
    assert batch.counts["mojibake_fixed"] == 1
    assert batch.hashes[1] == b"" and len(batch.hashes[0]) == 16  # parts are never deduped
    assert batch.blank == [False, False, True]
    texts = process(pieces, CleanConfig(), None)
    assert texts.texts == ["Gün", "abc", "  "] and texts.ids is None


def test_worker_processes_return_results_in_order(tmp_path):
    tok = CharTokenizer.train(["abcdefghij"])
    path = str(tok.save(tmp_path))
    groups = [[Piece("abcdefghij"[i:] + "a" * i, "s")] for i in range(10)]
    with Pool(2) as pool:
        results = list(pool.map(groups, CleanConfig(), path, "<u2"))
    assert [tok.decode(r.ids.tolist()) for r in results] == [g[0].text for g in groups]
