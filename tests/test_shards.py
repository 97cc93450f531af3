"""The shard writer and the safe reader (no build needed: samples are made here)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from occlusion_synth import shards


def _sample(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((256, 256), dtype=np.uint8)
    mask[100:150, 60:200] = 255
    inp = target.copy()
    inp[mask > 0] = rng.integers(0, 256, (int((mask > 0).sum()), 3), dtype=np.uint8)
    return inp, mask, target, {"split": "train", "b": 1.5, "a": np.float32(0.25)}


def _write(path, keys=("000000", "000001")):
    with shards.ShardWriter(path) as writer:
        for i, key in enumerate(keys):
            writer.add(shards.encode_sample(key, *_sample(i)))


def test_round_trip_and_member_metadata(tmp_path):
    path = tmp_path / "shards" / "train-000000.tar"
    _write(path)
    assert path.is_file() and not path.with_name(path.name + ".tmp").exists()
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:4]] == [
        "000000.input.png",
        "000000.mask.png",
        "000000.target.png",
        "000000.json",
    ]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
    got = list(shards.iter_samples(tmp_path))
    assert [s.key for s in got] == ["000000", "000001"]
    inp, mask, target, meta = _sample(1)
    s = got[1]
    assert np.array_equal(s.input, inp) and np.array_equal(s.mask, mask)
    assert np.array_equal(s.target, target)
    assert s.meta == {"a": 0.25, "b": 1.5, "split": "train"} and s.shard == "train-000000.tar"
    raw = dict(shards.read_shard(path))["000000"]["json"]
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()


def test_bytes_are_deterministic(tmp_path):
    a, b = tmp_path / "a" / "val-000000.tar", tmp_path / "b" / "val-000000.tar"
    _write(a)
    _write(b)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    png = dict(shards.read_shard(a))["000000"]["input.png"]
    assert b"tEXt" not in png and b"tIME" not in png


def test_aborted_writer_leaves_nothing(tmp_path):
    path = tmp_path / "train-000000.tar"
    with pytest.raises(RuntimeError):
        with shards.ShardWriter(path) as writer:
            writer.add(shards.encode_sample("000000", *_sample(0)))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_keys_with_dots_are_refused():
    with pytest.raises(ValueError):
        shards.encode_sample("a.b", *_sample(0))


def _raw_tar(path, members):
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hardlink", "device", "big"])
def test_unsafe_members_are_refused(tmp_path, kind):
    path = tmp_path / "train-000000.tar"
    data = b"x" * 10
    info = tarfile.TarInfo("000000.json")
    info.size = len(data)
    if kind == "absolute":
        info.name = "/etc/000000.json"
    elif kind == "dotdot":
        info.name = "../000000.json"
    elif kind == "symlink":
        info.type, info.linkname, info.size, data = tarfile.SYMTYPE, "/etc/passwd", 0, None
    elif kind == "hardlink":
        info.type, info.linkname, info.size, data = tarfile.LNKTYPE, "000001.json", 0, None
    elif kind == "device":
        info.type, info.size, data = tarfile.CHRTYPE, 0, None
    _raw_tar(path, [(info, data)])
    limit = 5 if kind == "big" else shards.MAX_MEMBER_BYTES
    with pytest.raises(shards.ShardError):
        list(shards.read_shard(path, max_member_bytes=limit))
    with pytest.raises(shards.ShardError):  # the header-only count applies the same checks
        shards.count_shard_samples(path, max_member_bytes=limit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-000000.tar"]


def test_count_reads_headers_and_matches_the_reader(tmp_path):
    path = tmp_path / "train-000000.tar"
    _write(path, keys=("000000", "000001", "000002"))
    assert shards.count_shard_samples(path) == len(list(shards.read_shard(path))) == 3


def test_truncated_shard_is_an_error(tmp_path):
    path = tmp_path / "train-000000.tar"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(shards.ShardError):
        list(shards.read_shard(path))


def test_split_key_twice_is_an_error(tmp_path):
    path = tmp_path / "train-000000.tar"
    _write(path, keys=("000000", "000001", "000000"))
    with pytest.raises(shards.ShardError, match="twice"):
        list(shards.read_shard(path))


def test_shard_names():
    assert shards.shard_name("val", 12) == "val-000012.tar"
    assert shards.parse_shard_name("val-000012.tar") == ("val", 12)
    assert shards.parse_shard_name("val-000012.tar.tmp") is None


def test_webdataset_reads_a_shard(tmp_path):
    webdataset = pytest.importorskip("webdataset")
    path = tmp_path / "train-000000.tar"
    _write(path)
    ds = webdataset.WebDataset([str(path)], shardshuffle=False).decode("rgb8")
    got = list(ds)
    assert [g["__key__"] for g in got] == ["000000", "000001"]
    inp, mask, target, meta = _sample(0)
    assert np.array_equal(got[0]["input.png"], inp)
    assert np.array_equal(got[0]["target.png"], target)
    assert got[0]["json"]["b"] == 1.5


def test_object_member_round_trips_and_is_optional(tmp_path):
    """``object.png`` is written after the mask when given, decoded when present, and
    ``Sample.occluder_mask`` falls back to the mask without it."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((256, 256), np.uint8)
    mask[40:120, 50:150] = 255
    obj = np.zeros_like(mask)
    obj[50:110, 60:140] = 255
    path = tmp_path / "train-000000.tar"
    with shards.ShardWriter(path) as writer:
        writer.add(shards.encode_sample("a", img, mask, img, {"key": "a"}, obj))
        writer.add(shards.encode_sample("b", img, mask, img, {"key": "b"}))
    (ka, ma), (kb, mb) = list(shards.read_shard(path))
    assert list(ma) == ["input.png", "mask.png", "object.png", "target.png", "json"]
    assert list(mb) == list(shards.MEMBERS)
    a, b = shards.decode_sample(ka, ma), shards.decode_sample(kb, mb)
    np.testing.assert_array_equal(a.object_mask, obj)
    np.testing.assert_array_equal(a.occluder_mask, obj)
    assert b.object_mask is None
    np.testing.assert_array_equal(b.occluder_mask, mask)
