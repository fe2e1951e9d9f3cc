import numpy as np

from minigpt.data.shards import ShardWriter


def test_writer_starts_new_shards_and_reads_across_them(tmp_path):
    w = ShardWriter(tmp_path, "train", np.uint16, shard_tokens=10)
    for chunk in np.array_split(np.arange(35), 4):
        w.write(chunk)
    assert w.sizes == [10, 10, 10, 5] and w.tokens == 35
    assert w.read(8, 23).tolist() == list(range(8, 23))
    assert w.close() == [f"train-{i:05d}.bin" for i in range(4)]
    data = np.concatenate([np.fromfile(tmp_path / f, np.uint16) for f in w.files])
    assert data.tolist() == list(range(35))


def test_single_shard_is_named_after_the_split(tmp_path):
    w = ShardWriter(tmp_path, "val", np.uint32, shard_tokens=100)
    w.write(np.arange(5))
    assert w.close() == ["val.bin"]
    assert np.fromfile(tmp_path / "val.bin", np.uint32).tolist() == list(range(5))
    empty = ShardWriter(tmp_path, "test", np.uint16, 100)
    assert empty.close() == ["test.bin"] and (tmp_path / "test.bin").stat().st_size == 0


def test_move_tail_across_shards(tmp_path):
    train = ShardWriter(tmp_path, "train", np.uint16, shard_tokens=10)
    val = ShardWriter(tmp_path, "val", np.uint16, shard_tokens=4)
    train.write(np.arange(35))
    train.move_tail(17, val)
    assert train.sizes == [10, 7] and train.tokens == 17
    assert val.tokens == 18
    train.close(), val.close()
    read = lambda w: np.concatenate([np.fromfile(tmp_path / f, np.uint16) for f in w.files])  # noqa: E731
    assert read(train).tolist() == list(range(17))
    assert read(val).tolist() == list(range(17, 35))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(train.files + val.files)
