"""``occsynth build --partition I/K`` + ``occsynth merge``: K partitions merged are the bytes of
one build; merge refuses a missing or unfinished partition and one built with other options;
a partition touches only its own shards."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from occlusion_synth import shards
from occlusion_synth.build import BuildInterrupted, BuildOptions, run_build
from occlusion_synth.cli import main
from occlusion_synth.errors import UserError
from occlusion_synth.partition import Partition
from occlusion_synth.sample import make_sample
from occlusion_synth.verify import verify_dataset

#: 16 demo samples in shards of 4: train 6, val 5, test 5 -> 6 shards.
N, SEED = 16, 3


def _merge(out: Path):
    return CliRunner().invoke(main, ["merge", str(out)])


@pytest.fixture(scope="module")
def options(demo_build_options) -> Callable[..., BuildOptions]:
    """``options(out, cache, **kw)``: build options for the N demo samples of this module."""
    return partial(demo_build_options, n=N, seed=SEED)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("landmarks") / "cache.parquet"


@pytest.fixture(scope="module")
def single(tmp_path_factory, cache, options) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    run_build(options(out, cache), progress=False)
    return out


@pytest.fixture(scope="module")
def half(tmp_path_factory, cache, options) -> Path:
    """Partition 0/2 alone, finished."""
    out = tmp_path_factory.mktemp("half") / "out"
    run_build(options(out, cache, partition=Partition(0, 2)), progress=False)
    return out


def test_partition_selects_every_kth_shard():
    names = [f"s{i}" for i in range(7)]
    assert Partition(1, 3).select(names) == {"s1", "s4"}
    assert set().union(*(Partition(i, 3).select(names) for i in range(3))) == set(names)
    with pytest.raises(UserError, match="I must be between 0 and K-1"):
        Partition.parse("2/2")
    with pytest.raises(UserError, match="takes I/K"):
        Partition.parse("one of two")


def test_partitions_merged_equal_a_single_build(
    tmp_path, half, single, cache, options, dataset_hashes
):
    out = shutil.copytree(half, tmp_path / "out")
    assert not (out / "manifest.parquet").exists()
    assert len(list((out / "shards").glob("*.tar"))) == 3  # shards 0, 2, 4 of 6
    result = run_build(options(out, cache, partition=Partition(1, 2)), progress=False)
    assert result.samples == 4 and result.produced == 4  # train-000001 and val-/test-000001
    merged = _merge(out)
    assert merged.exit_code == 0, merged.output
    assert "merged 6 shard(s): 16 samples (train 6, val 5, test 5)" in merged.output
    assert dataset_hashes(out) == dataset_hashes(single)
    assert (out / "rejects.csv").read_bytes() == (single / "rejects.csv").read_bytes()
    assert not (out / ".partial").exists() and verify_dataset(out).ok
    card, ref = shards.read_dataset_card(out), shards.read_dataset_card(single)
    assert card["counts"] == ref["counts"] and card["coverage"] == ref["coverage"]
    assert card["options"]["partition"] is None and card["options"]["seed"] == SEED
    assert len(card["partitions"]) == 2  # the command of each partition


def test_merge_refuses_a_missing_partition(half):
    result = _merge(half)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: cannot merge: partition 1/2 is missing in {half}; run the build command "
        "with --partition 1/2"
    ]


def test_merge_refuses_a_partition_built_with_otheroptions(tmp_path, half, cache, options):
    out = shutil.copytree(half, tmp_path / "out")
    with pytest.raises(UserError, match=r"partition 0/2 .* other options \(--seed 3 -> 4\)"):
        run_build(options(out, cache, seed=4, partition=Partition(1, 2)), progress=False)
    run_build(options(out, cache, partition=Partition(1, 2)), progress=False)
    record = out / ".partial" / "partition-1-of-2.json"
    data = json.loads(record.read_text())
    data["plan"]["max_occluders"] = 2  # as if built with --max-occluders 2 elsewhere
    record.write_text(json.dumps(data))
    result = _merge(out)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "partition 1/2 was built with other options than 0/2" in lines[0]
    assert "--max-occluders 1 -> 2" in lines[0]
    assert not (out / "manifest.parquet").exists()


def test_merge_refuses_an_unfinished_partition_and_other_counts(tmp_path, half, cache, options):
    out = shutil.copytree(half, tmp_path / "out")
    done = []

    def make(*args, **kw):  # interrupted after its first sample
        if done:
            raise KeyboardInterrupt
        done.append(1)
        return make_sample(*args, **kw)

    with pytest.raises(BuildInterrupted):
        run_build(options(out, cache, partition=Partition(1, 2)), make=make, progress=False)
    result = _merge(out)
    assert result.exit_code == 2 and "partition 1/2 has not finished" in result.output
    assert "--partition 1/2 --resume" in result.output
    with pytest.raises(UserError, match="another split into 2"):
        run_build(options(out, cache, partition=Partition(0, 3)), progress=False)


def test_a_partition_refuses_a_single_build_with_otheroptions(tmp_path, cache, options):
    out = tmp_path / "out"

    def make(*args, **kw):  # a single build, interrupted at once
        raise KeyboardInterrupt

    with pytest.raises(BuildInterrupted):
        run_build(options(out, cache), make=make, progress=False)
    with pytest.raises(UserError, match=r"holds a build with other options \(--seed 3 -> 4\)"):
        run_build(options(out, cache, seed=4, partition=Partition(0, 2)), progress=False)


def test_a_partition_touches_only_its_own_shards(
    tmp_path, half, single, cache, options, dataset_hashes
):
    out = shutil.copytree(half, tmp_path / "out")
    shard_dir = out / "shards"
    # Leftovers of partition 1/2 killed mid-write: a temporary tar, a tar without its part.
    (shard_dir / "train-000001.tar.tmp").write_bytes(b"half a tar")
    (shard_dir / "val-000001.tar").write_bytes(b"no part beside it")
    # Partition 0/2 killed after writing a part but before renaming its tar.
    (shard_dir / "test-000000.tar").unlink()
    before = {p.name: p.read_bytes() for p in shard_dir.iterdir() if "000001" in p.name}
    result = run_build(options(out, cache, partition=Partition(0, 2), resume=True), progress=False)
    assert result.produced == 4 and result.kept_shards == 2  # test-000000 made again
    after = {p.name: p.read_bytes() for p in shard_dir.iterdir() if "000001" in p.name}
    assert after == before  # partition 1/2's files untouched
    assert (shard_dir / "test-000000.tar").read_bytes() == (
        single / "shards" / "test-000000.tar"
    ).read_bytes()
    # Partition 1/2 resumes over its own leftovers; the merge is the single build.
    run_build(options(out, cache, partition=Partition(1, 2), resume=True), progress=False)
    assert not list(shard_dir.glob("*.tmp"))
    assert _merge(out).exit_code == 0
    assert dataset_hashes(out) == dataset_hashes(single)


def test_a_started_partition_needs_resume(half, cache, options):
    with pytest.raises(UserError, match=r"partition 0/2 was already started .* add --resume"):
        run_build(options(half, cache, partition=Partition(0, 2)), progress=False)
    result = run_build(options(half, cache, partition=Partition(0, 2), resume=True), progress=False)
    assert result.produced == 0


def test_partitions_into_a_url_merge_to_the_single_build(
    tmp_path, single, cache, monkeypatch, options, dataset_hashes
):
    fsspec = pytest.importorskip("fsspec")
    monkeypatch.setenv("OCCSYNTH_STAGING", str(tmp_path / "staging"))
    url = "memory://occsynth-test-partitions/out"
    try:
        for i in (1, 0):
            run_build(options(url, cache, partition=Partition(i, 2)), progress=False)
        assert _merge(url).exit_code == 0
        fs = fsspec.filesystem("memory")
        files = [p for p in fs.find(url) if p.endswith((".tar", "manifest.parquet"))]
        got = {p.rsplit("/", 1)[-1]: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in files}
        assert got == dataset_hashes(single)
        assert not fs.exists(f"{url}/.partial")
    finally:
        fsspec.filesystem("memory").rm("memory://occsynth-test-partitions", recursive=True)


def test_overwrite_redoes_only_the_partition(tmp_path, half, single, cache, options):
    out = shutil.copytree(half, tmp_path / "out")
    other = out / "shards" / "train-000001.tar"  # as if partition 1/2 had written it
    other.write_bytes(b"partition 1's")
    result = run_build(
        options(out, cache, partition=Partition(0, 2), overwrite=True), progress=False
    )
    assert result.produced == 12 and result.kept_shards == 0
    assert other.read_bytes() == b"partition 1's"
    for name in ("train-000000.tar", "val-000000.tar", "test-000000.tar"):
        assert (out / "shards" / name).read_bytes() == (single / "shards" / name).read_bytes()
