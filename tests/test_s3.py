"""Datasets in object storage, against a real S3 API server on 127.0.0.1 (moto's server,
started and stopped here; s3fs pointed at it through ``AWS_ENDPOINT_URL``).

A build into ``s3://`` killed after its first shard resumes to the bytes of a local build;
``occsynth verify|stats|preview --from``, ``fdsgan-train --data`` and ``fdsgan-eval``'s reader
take the URL; and while a build uploads, no object with a final shard name is ever incomplete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from occlusion_synth import shards, storage  # noqa: E402
from occlusion_synth.build import BuildOptions, run_build  # noqa: E402
from occlusion_synth.verify import verify_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUCKET = "occsynth-test"
#: 24 demo samples in shards of 4: 6 shards, built one sample at a time.
BUILD = ["--faces", "demo", "--n", "24", "--seed", "5", "--workers", "1", "--shard-size", "4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 server on a free loopback port; yields the environment that points at it."""
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "OCCSYNTH_STAGING": str(tmp_path_factory.mktemp("staging")),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    S3FileSystem.clear_instance_cache()
    try:
        S3FileSystem().mkdir(BUCKET)
        yield dict(os.environ)
    finally:
        S3FileSystem.clear_instance_cache()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("landmarks") / "cache.parquet"


def _cli(*args: str) -> list[str]:
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def _env(s3: dict) -> dict:
    return dict(s3, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))


def _objects(prefix: str) -> dict[str, bytes]:
    """Every object below ``s3://BUCKET/prefix``, by path relative to it."""
    from s3fs import S3FileSystem

    fs = S3FileSystem()
    fs.invalidate_cache()
    root = f"{BUCKET}/{prefix}"
    return {p[len(root) + 1 :]: fs.cat_file(p) for p in fs.find(root)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _local_hashes(root: Path) -> dict[str, str]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return {str(p.relative_to(root)): _sha(p.read_bytes()) for p in files}


def _shard_listing(prefix: str) -> list[str]:
    return [n for n in storage.listdir(f"s3://{BUCKET}/{prefix}/shards") if n.endswith(".tar")]


def _start_build(s3: dict, url: str, cache: Path, log: Path) -> subprocess.Popen:
    args = _cli("build", *BUILD, "--out", url, "--landmark-cache", str(cache))
    return subprocess.Popen(
        args, env=_env(s3), stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True
    )


def test_a_missing_bucket_prefix_is_one_line(s3):
    result = CliRunner().invoke(_occsynth(), ["verify", f"s3://{BUCKET}/nothing-here"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: s3://{BUCKET}/nothing-here is not a folder (or holds nothing)"
    ]


def _occsynth():
    from occlusion_synth.cli import main

    return main


def test_killed_build_into_s3_resumes_verifies_and_trains(s3, cache, tmp_path):
    url = f"s3://{BUCKET}/killed"
    ref = tmp_path / "ref"  # the same build on the local disk
    options = BuildOptions(
        faces="demo", n=24, out=ref, seed=5, workers=1, shard_size=4, landmark_cache=str(cache)
    )
    run_build(options, progress=False)

    proc = _start_build(s3, url, cache, tmp_path / "log.txt")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not _shard_listing("killed"):
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "log.txt").read_text()
        os.killpg(proc.pid, signal.SIGKILL)  # the driver dies after its first shard
    finally:
        proc.wait()
    kept = _shard_listing("killed")
    assert 1 <= len(kept) < 6
    assert not storage.exists(f"{url}/dataset.json")
    assert not verify_dataset(url).ok  # unfinished: .partial/ is still there

    done = subprocess.run(
        _cli("build", *BUILD, "--out", url, "--landmark-cache", str(cache), "--resume"),
        env=_env(s3),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert f"{len(kept)} shard(s) kept" in done.stdout

    # The bucket holds the files of the local build, with the same bytes for the shards,
    # manifest and rejects (the card and the preview's title name --out and the command).
    objects = _objects("killed")
    local = _local_hashes(ref)
    assert sorted(objects) == sorted(local)
    named = {"dataset.json", "preview.png"}
    assert {k: _sha(v) for k, v in objects.items() if k not in named} == {
        k: v for k, v in local.items() if k not in named
    }
    card = json.loads(objects["dataset.json"])
    assert card["options"]["out"] == url
    assert card["counts"] == json.loads((ref / "dataset.json").read_text())["counts"]

    runner = CliRunner()
    result = runner.invoke(_occsynth(), ["verify", url, "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "OK: 24 samples" in result.output and url in result.output

    figure = tmp_path / "stats.png"
    result = runner.invoke(_occsynth(), ["stats", url, "--out", str(figure)])
    assert result.exit_code == 0, result.output
    assert figure.stat().st_size > 10_000

    sheet = tmp_path / "sheet.png"
    result = runner.invoke(_occsynth(), ["preview", "--from", url, "--n", "3", "--out", str(sheet)])
    assert result.exit_code == 0, result.output
    assert "3 samples" in result.output

    pytest.importorskip("torch")
    from fdsgan_train.cli import train_main
    from fdsgan_train.evaluate import load_split

    run_dir = tmp_path / "run"
    args = ["--data", url, "--run-dir", str(run_dir), "--config", "tiny", "--device", "cpu"]
    args += ["--max-steps", "20", "--vgg-random-weights", "--workers", "1"]
    result = runner.invoke(train_main, args)
    assert result.exit_code == 0, result.output
    assert "saved" in result.output and "step 20" in result.output
    assert (run_dir / "checkpoints").is_dir()

    # fdsgan-eval's reader: the same samples from the bucket as from the local build.
    remote_test = load_split(url, "test")
    local_test = load_split(ref, "test")
    assert [s.key for s in remote_test] == [s.key for s in local_test]
    assert all((a.input == b.input).all() for a, b in zip(remote_test, local_test, strict=True))


def test_training_with_a_cache_reads_each_shard_once(s3, cache, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from fdsgan_train import data

    url = f"s3://{BUCKET}/cached"
    options = BuildOptions(
        faces="demo", n=8, out=url, seed=1, workers=1, shard_size=4, landmark_cache=str(cache)
    )
    run_build(options, progress=False)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    paths = data.shard_paths(url, "train")
    assert paths and all(isinstance(p, Path) and p.is_file() for p in paths)
    assert paths[0] == tmp_path / "cache" / "s3" / BUCKET / "cached" / "shards" / paths[0].name
    assert paths[0].read_bytes() == storage.read_bytes(f"{url}/shards/{paths[0].name}")
    before = paths[0].stat().st_mtime_ns
    assert data.shard_paths(url, "train") == paths  # reused, not downloaded again
    assert paths[0].stat().st_mtime_ns == before
    monkeypatch.delenv(data.CACHE_ENV)
    streamed = data.shard_paths(url, "train")
    assert streamed == [f"{url}/shards/{p.name}" for p in paths]
    keys = [k for k, _ in data.iter_raw_samples(streamed[0])]
    assert keys == [k for k, _ in shards.read_shard(paths[0])]


def _complete(data: bytes, expected: int) -> bool:
    """Whether ``data`` is a whole shard: a tar that ends properly with ``expected`` samples."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            names = tar.getnames()
    except (tarfile.TarError, EOFError):
        return False
    keys = {n.split(".", 1)[0] for n in names}
    return len(keys) == expected and len(names) == len(shards.KNOWN_MEMBERS) * expected


def test_no_object_with_a_final_shard_name_is_ever_incomplete(s3, cache, tmp_path):
    proc = _start_build(s3, f"s3://{BUCKET}/watched", cache, tmp_path / "log.txt")
    from s3fs import S3FileSystem

    fs = S3FileSystem()
    seen: dict[str, int] = {}  # final shard name -> times it was read while the build ran
    try:
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            fs.invalidate_cache()
            # detail: s3fs answers a prefix that filled up between its listing and its
            # fallback lookup with the prefix itself, as a directory; only objects count
            listing = fs.find(f"{BUCKET}/watched/shards", detail=True)
            for path, info in listing.items():
                if info["type"] == "directory":
                    continue
                name = path.rsplit("/", 1)[-1]
                if shards.parse_shard_name(name):
                    body = fs.cat_file(path)
                    assert _complete(body, 4), f"{name} was readable incomplete"
                    seen[name] = seen.get(name, 0) + 1
                else:
                    pytest.fail(f"an object that is not a finished shard: {name}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, (tmp_path / "log.txt").read_text()
    assert len(seen) >= 3, seen  # shards were watched while the build was still running
    assert verify_dataset(f"s3://{BUCKET}/watched").ok
