"""Throughput and memory of ``occsynth build``.

Default run (one process tree, side by side, same faces, same workers):

* **build** - ``occsynth build`` with landmarks already in the cache (samples/s, whole run);
* **I/O floor** - the same pipeline with compositing replaced by a copy: decode the source,
  crop to 256x256, encode the three PNGs, write the tar;
* their ratio (target >= 0.5).

``--big N`` additionally runs ``occsynth build --n N`` as a subprocess, once with the
landmark cache warm and once with ``--no-landmark-cache``, reporting wall time, the peak
RSS of the largest single process (``getrusage(RUSAGE_CHILDREN)``) and the peak total RSS
of the whole process tree (polled from /proc).

    python benchmarks/build.py --faces ../shared/data/celeba_small --n 400 --workers 2
    python benchmarks/build.py --faces ../shared/data/celeba_small --big 20000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from occlusion_synth.build import BuildOptions, run_build  # noqa: E402
from occlusion_synth.sample import Sample  # noqa: E402


def io_floor_make(face, library, rng, options, key, stratum=None):
    """A sample with no compositing: the target copied as input, an empty mask."""
    target = face.image
    mask = np.zeros(target.shape[:2], dtype=np.uint8)
    meta = {"source_id": face.source.id, "occluders": [], "categories": "", "coverage": 0.0}
    return Sample(key=key, input=target.copy(), mask=mask, target=target, meta=meta)


def _timed_build(options: BuildOptions, make=None) -> float:
    t0 = time.perf_counter()
    run_build(options, make=make, progress=False, echo=lambda s: None)
    return time.perf_counter() - t0


def _tree_rss_kb(pid: int) -> int:
    """Total RSS (kB) of ``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


_WRAPPER = """
import resource, subprocess, sys
rc = subprocess.call([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
print("maxrss_kb", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
sys.exit(rc)
"""


def big_run(args: list[str]) -> tuple[float, float, float]:
    """Run the CLI in a fresh process tree: (wall s, peak RSS MB of the largest single
    process, from getrusage(RUSAGE_CHILDREN) of a wrapper; peak total RSS MB of the tree)."""
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRAPPER, code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak_tree = 0
    while proc.poll() is None:
        peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    lines = (proc.stdout.read() if proc.stdout else "").strip().splitlines()
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}): {lines}")
    peak_one = int(lines[-1].split()[1])
    print("   ", lines[-2])
    return wall, peak_one / 1024, peak_tree / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default=str(REPO.parent / "shared" / "data" / "celeba_small"))
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--big", type=int, default=0, help="also time a build of this many samples")
    ap.add_argument("--skip-ratio", action="store_true")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="occsynth-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "landmarks.parquet"
    os.environ["OCCSYNTH_LANDMARK_CACHE"] = str(cache)

    def opts(name: str, n: int) -> BuildOptions:
        out = work / name
        shutil.rmtree(out, ignore_errors=True)
        return BuildOptions(
            faces=a.faces,
            n=n,
            out=out,
            workers=a.workers,
            shard_size=a.shard_size,
            landmark_cache=str(cache),
        )

    print(f"faces {a.faces}, workers {a.workers}, cpu cores {os.cpu_count()}")
    t = _timed_build(opts("warm", 1 if cache.exists() else a.n))
    print(f"landmark cache warm-up: {t:.1f} s")
    if not a.skip_ratio:
        t_build = _timed_build(opts("build", a.n))
        t_floor = _timed_build(opts("floor", a.n), make=io_floor_make)
        r_build, r_floor = a.n / t_build, a.n / t_floor
        print(f"occsynth build (cached landmarks): {r_build:7.1f} samples/s  ({t_build:.1f} s)")
        print(f"I/O floor (decode, crop, 3 PNGs, tar): {r_floor:7.1f} samples/s  ({t_floor:.1f} s)")
        print(f"ratio build / floor: {r_build / r_floor:.2f}  (target >= 0.5)")
    if a.big:
        common = [
            "build",
            "--faces",
            a.faces,
            "--n",
            str(a.big),
            "--workers",
            str(a.workers),
            "--shard-size",
            str(a.shard_size),
        ]
        for label, extra, name in (
            ("cached landmarks", ["--landmark-cache", str(cache)], "big"),
            ("no landmark cache", ["--no-landmark-cache"], "big-nocache"),
        ):
            shutil.rmtree(work / name, ignore_errors=True)
            wall, one, tree = big_run([*common, "--out", str(work / name), *extra])
            print(
                f"--n {a.big} --workers {a.workers}, {label}: {wall:.0f} s wall, "
                f"{a.big / wall:.1f} samples/s, peak RSS {one:.0f} MB (largest process), "
                f"{tree:.0f} MB (whole tree)"
            )
            shutil.rmtree(work / name, ignore_errors=True)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
