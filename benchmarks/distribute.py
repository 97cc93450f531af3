"""``occsynth build --distributor local`` vs ``--distributor ray``, side by side, same bytes.

Each run is a fresh ``occsynth build`` process (so Ray's start-up is counted as a user sees
it), into a fresh folder, with the same options but the distributor; the runs alternate
(local, ray, local, ray... ``--repeat`` pairs) so that other load on a shared machine falls on
both alike. Before timing, the landmarks of every face are detected once into a cache
(``--cache``), so every run reads them from there. ``--partitions K`` then builds the same
dataset as K partitions, one after another, and merges them.

Reported: wall seconds and samples/s of every run, the best and the mean per distributor,
the ratio ray/local (samples/s), the mean difference in seconds, the machine's load
(``os.getloadavg``) before and after, and whether every shard and the manifest have the
same sha256 in every build.

The builds import ``occlusion_synth`` as this interpreter does: to time a fixed snapshot while
the working tree changes, run from a copy (``git archive HEAD | tar -x -C /tmp/snap``) with
``PYTHONPATH=/tmp/snap``; Ray's local workers inherit it.

    nice -n 10 python benchmarks/distribute.py --faces ../shared/data/celeba_small \\
        --n 2000 --workers 2 --repeat 2 --partitions 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def occsynth(*args: str) -> list[str]:
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def run(args: list[str]) -> float:
    """Run a command to the end (its output to a log beside nothing); the wall seconds."""
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-2000:]}")
    return seconds


def digests(root: Path) -> dict[str, str]:
    """sha256 of every shard and of the manifest of a build."""
    files = sorted((root / "shards").glob("*.tar")) + [root / "manifest.parquet"]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", default=str(REPO.parent / "shared/data/celeba_small"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2, help="local/ray pairs, alternating")
    ap.add_argument("--partitions", type=int, default=0, help="also build as K partitions")
    ap.add_argument("--work", type=Path, default=None, help="folder for the builds (a temp)")
    ap.add_argument("--cache", type=Path, default=None, help="landmark cache (in --work)")
    ap.add_argument("--keep", action="store_true", help="keep the builds")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each run's line as it ends, also into a log

    work = a.work or Path(tempfile.mkdtemp(prefix="occsynth-distribute-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = a.cache or work / "landmarks.parquet"
    common = [
        *("--faces", a.faces, "--n", str(a.n), "--seed", str(a.seed)),
        *("--shard-size", str(a.shard_size), "--workers", str(a.workers)),
        *("--landmark-cache", str(cache)),
    ]
    import occlusion_synth

    print(f"code: {Path(occlusion_synth.__file__).parent} (PYTHONPATH picks another checkout)")
    print(f"before: {load()}")
    t = run(occsynth("landmarks", "--faces", a.faces, "--out", str(work / "lm.parquet"),
                     "--landmark-cache", str(cache)))  # fmt: skip
    print(f"landmarks of every face into {cache}: {t:.1f} s (once, not timed below)")

    times: dict[str, list[float]] = {"local": [], "ray": []}
    builds: dict[str, Path] = {}
    for r in range(a.repeat):
        for dist in ("local", "ray"):
            out = work / f"{dist}-{r}"
            shutil.rmtree(out, ignore_errors=True)
            seconds = run(occsynth("build", *common, "--out", str(out), "--distributor", dist))
            times[dist].append(seconds)
            builds[f"{dist}-{r}"] = out
            print(f"  {dist:5s} run {r + 1}: {seconds:7.1f} s  {a.n / seconds:6.2f} samples/s")

    if a.partitions:
        out = work / "partitions"
        shutil.rmtree(out, ignore_errors=True)
        total = 0.0
        for i in range(a.partitions):
            part = f"{i}/{a.partitions}"
            total += run(occsynth("build", *common, "--out", str(out), "--partition", part))
        total += run(occsynth("merge", str(out)))
        builds["partitions"] = out
        print(f"  {a.partitions} partitions one after another + merge: {total:.1f} s")

    ref = digests(builds["local-0"])
    same = {name: digests(path) == ref for name, path in builds.items()}
    print(f"after: {load()}")
    print(f"{a.n} samples, shards of {a.shard_size}, --workers {a.workers}:")
    for dist, ts in times.items():
        best, mean = min(ts), sum(ts) / len(ts)
        print(
            f"  {dist:5s} best {best:7.1f} s ({a.n / best:.2f} samples/s), "
            f"mean {mean:7.1f} s ({a.n / mean:.2f} samples/s)"
        )
    ratio_best = min(times["local"]) / min(times["ray"])
    ratio_mean = sum(times["local"]) / sum(times["ray"])
    print(f"  ray/local samples/s: {ratio_best:.2f}x (best), {ratio_mean:.2f}x (mean)")
    extra = sum(times["ray"]) / len(times["ray"]) - sum(times["local"]) / len(times["local"])
    print(f"  ray takes {extra:+.1f} s per build (mean; Ray's start-up and stop are part of it)")
    print(f"  {len(ref)} files (shards + manifest); sha256 identical in every build: ", end="")
    print("yes" if all(same.values()) else f"NO {same}")
    if not a.keep and a.work is None:
        shutil.rmtree(work, ignore_errors=True)
    if not all(same.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
