"""``occsynth build --distributor ray``: one Ray task per shard, byte-identical to a local build,
resumable across distributors, mixable with ``--partition``; without Ray, a one-line hint.

The Ray tests share one local Ray runtime (2 CPUs), started here and shut down at the end;
they are skipped when Ray is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from occlusion_synth import distribute
from occlusion_synth.build import BuildInterrupted, BuildOptions, run_build
from occlusion_synth.cli import main
from occlusion_synth.errors import UserError
from occlusion_synth.partition import Partition
from occlusion_synth.sample import make_sample
from occlusion_synth.verify import verify_dataset

REPO = Path(__file__).resolve().parents[1]
#: 16 demo samples in shards of 4: train 6, val 5, test 5 -> 6 shards.
N, SEED = 16, 3


@pytest.fixture(scope="module")
def options(demo_build_options) -> Callable[..., BuildOptions]:
    """``options(out, cache, **kw)``: build options for the N demo samples of this module."""
    return partial(demo_build_options, n=N, seed=SEED, workers=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("landmarks") / "cache.parquet"


@pytest.fixture(scope="module")
def local(tmp_path_factory, cache, options) -> Path:
    """The reference: a local build with two worker processes."""
    out = tmp_path_factory.mktemp("local") / "out"
    run_build(options(out, cache), progress=False)
    return out


@pytest.fixture(scope="module")
def ray_runtime():
    """A local Ray runtime with 2 CPUs for this module (builds find it and use it)."""
    try:
        ray = distribute.import_ray(local=True)  # before any other import of ray
    except UserError:
        pytest.skip("ray is not installed")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def test_without_ray_the_build_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["build", "--faces", "demo", "--n", "4", "--out", str(out), "--distributor", "ray"]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: --distributor ray needs Ray: pip install 'occlusion-synth[ray]'"
    ]
    assert not out.exists()


def test_ray_address_needs_the_ray_distributor(tmp_path):
    args = ["build", "--faces", "demo", "--n", "4", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, "--ray-address", "auto"])
    assert result.exit_code == 2
    assert "--ray-address needs --distributor ray" in result.output


def test_an_unreachable_cluster_is_one_line(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["build", "--faces", "demo", "--n", "4", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(
        main, [*args, "--distributor", "ray", "--ray-address", f"127.0.0.1:{port}"]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no Ray cluster answers there" in lines[0]
    assert not (tmp_path / "o").exists()


def test_ray_build_is_byte_identical_to_a_local_build(
    ray_runtime, tmp_path, local, cache, options, dataset_hashes
):
    out = tmp_path / "ray"
    result = run_build(options(out, cache, distributor="ray"), progress=False)
    assert result.produced == N
    assert dataset_hashes(out) == dataset_hashes(local)
    assert (out / "rejects.csv").read_bytes() == (local / "rejects.csv").read_bytes()
    assert ray_runtime.is_initialized()  # a runtime the caller started is left running
    assert verify_dataset(out).ok


def test_an_interrupted_local_build_resumes_with_ray(
    ray_runtime, tmp_path, local, cache, options, dataset_hashes
):
    out = tmp_path / "mixed"
    made = []

    def make(*args, **kw):  # Ctrl-C after 13 samples: the first shard of each split is done
        if len(made) == 13:
            raise KeyboardInterrupt
        made.append(1)
        return make_sample(*args, **kw)

    with pytest.raises(BuildInterrupted, match="3 shard"):
        run_build(options(out, cache, workers=1), make=make, progress=False)
    result = run_build(options(out, cache, distributor="ray", resume=True), progress=False)
    assert result.kept_shards == 3 and result.produced == N - 12
    assert dataset_hashes(out) == dataset_hashes(local)


def test_partitions_by_ray_and_local_merge_to_the_local_build(
    ray_runtime, tmp_path, local, cache, options, dataset_hashes
):
    out = tmp_path / "parts"
    run_build(options(out, cache, distributor="ray", partition=Partition(1, 2)), progress=False)
    shard = out / "shards" / "val-000001.tar"  # a Ray worker died while writing this one
    shard.unlink()
    (out / "shards" / "val-000001.tar.tmp").write_bytes(b"partial")
    run_build(options(out, cache, partition=Partition(0, 2)), progress=False)
    run_build(options(out, cache, partition=Partition(1, 2), resume=True), progress=False)
    assert CliRunner().invoke(main, ["merge", str(out)]).exit_code == 0
    assert dataset_hashes(out) == dataset_hashes(local)


def _cli(*args: str) -> list[str]:
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


@pytest.mark.slow
def test_a_killed_ray_driver_resumes(ray_runtime, tmp_path, local, cache, options, dataset_hashes):
    """The driver (with its private Ray runtime) is killed once a shard is written; --resume
    keeps the complete shards and ends with the local build's bytes."""
    out = tmp_path / "killed"
    args = [*_flags(cache), "--out", str(out), "--distributor", "ray"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen(
            _cli("build", *args), env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if list((out / "shards").glob("*.tar")):
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _wait_for_session(proc.pid)  # its Ray workers (own process groups) stop by themselves
    killed = len(list((out / "shards").glob("*.tar")))
    assert killed >= 1, (tmp_path / "log").read_text()
    result = run_build(options(out, cache, distributor="ray", resume=True), progress=False)
    assert result.kept_shards >= 1
    assert dataset_hashes(out) == dataset_hashes(local)
    shutil.rmtree(out)


def _session_and_state(pid: str) -> tuple[int, str] | None:
    """A process's session id and state (``Z``: a zombie), or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[3]), fields[0]  # state, ppid, pgrp, session


def _wait_for_session(sid: int, seconds: float = 60) -> None:
    """Wait until no process of session ``sid`` is left (zombies aside)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [(p.name, _session_and_state(p.name)) for p in Path("/proc").iterdir()]
        left = [pid for pid, info in found if info and info[0] == sid and info[1] != "Z"]
        if not left:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"processes of the killed build are still running: {left}")
        time.sleep(0.2)


def _flags(cache: Path) -> list[str]:
    return [
        *("--faces", "demo", "--n", str(N), "--seed", str(SEED), "--workers", "2"),
        *("--shard-size", "4", "--landmark-cache", str(cache)),
    ]
