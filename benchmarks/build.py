"""Throughput, start-up and memory of ``occsynth build``, beside its I/O floor.

Every figure comes from fresh processes (``occsynth build`` on the command line), so start-up
(imports, the occluder library, the face pool, forking workers) is counted as a user sees it:

* **build** - ``occsynth build --workers W`` on CelebA faces with annotation landmarks;
* **I/O floor** - the same pipeline with the sample maker replaced by a copy: decode the
  source, crop, resize to 256x256, encode the three PNGs (the build's own encoder), write the
  tar; W processes;
* both at two sizes (``--sizes 200,600``), interleaved and repeated (``--repeat``, the fastest
  run of each kept: the machine may be shared). **At the margin** = the extra samples over the
  extra seconds between the two sizes, i.e. throughput without start-up; the CPU seconds of
  the whole process tree per extra sample are reported too (less sensitive to other load);
* **start-up** - seconds from launching ``occsynth build`` to the first sample's bytes in a
  shard file (polled every 5 ms), and the intercept of the two-size line (start-up plus the
  fixed cost of finishing: manifest, dataset card, preview).

Faces: the annotated images of a CelebA root (``--faces``, default ``../shared/data/
celeba_small``, whose images are 89x109, half of CelebA's 178x218). ``--scales 1,2`` also
builds a copy upscaled 2x to CelebA's own 178x218 (bicubic, JPEG quality 95, the annotation
file scaled) under ``--work``, and reports both.

``--baseline PATH`` runs the same measurements, interleaved, with the package of another
checkout (e.g. ``git archive HEAD~5 | tar -x -C /tmp/base``), for before/after in one run.
``--big N`` additionally times a build of N samples with and without the landmark cache and
reports peak memory.

    python benchmarks/build.py --workers 2 --scales 1,2 --repeat 3
    python benchmarks/build.py --baseline /tmp/base --scales 2
    python benchmarks/build.py --faces ../shared/data/celeba_small --big 20000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CELEBA_IMAGES = "img_align_celeba"
LANDMARKS = "list_landmarks_align_celeba.txt"
PARTITION = "list_eval_partition.txt"


# --------------------------------------------------------------------------- faces


def annotated_faces(src: Path, dest: Path, scale: int) -> Path:
    """A CelebA root in ``dest`` with only the images of ``src`` that have an annotation row,
    upscaled ``scale`` times (bicubic, JPEG quality 95, points scaled) or linked as they are
    when ``scale`` is 1. Reused when it exists."""
    if (dest / LANDMARKS).is_file():
        return dest
    import cv2

    lines = (src / LANDMARKS).read_text().splitlines()
    rows = [line.split() for line in lines[2:] if line.strip()]
    (dest / CELEBA_IMAGES).mkdir(parents=True, exist_ok=True)
    kept = []
    for row in rows:
        name, source = row[0], src / CELEBA_IMAGES / row[0]
        if not source.is_file():
            continue
        if scale == 1:
            (dest / CELEBA_IMAGES / name).symlink_to(source.resolve())
        else:
            img = cv2.imread(str(source))
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(dest / CELEBA_IMAGES / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        kept.append(" ".join([name, *(f"{float(v) * scale:g}" for v in row[1:])]))
    names = {k.split()[0] for k in kept}
    if (src / PARTITION).is_file():
        part = [r for r in (src / PARTITION).read_text().splitlines() if r.split()[0] in names]
        (dest / PARTITION).write_text("\n".join(part) + "\n")
    (dest / LANDMARKS).write_text(f"{len(kept)}\n{lines[1]}\n" + "\n".join(kept) + "\n")
    return dest


# --------------------------------------------------------------------------- runs

#: Runs ``occsynth build`` (argv) in this process tree; with ``--floor`` the sample maker is
#: replaced by a copy (the I/O floor). The package comes from sys.path[0] (PYTHONPATH).
_RUNNER = r"""
import sys
if sys.argv[1] == "--pillow":  # PNGs by Pillow at level 1 (the encoder the issue measured)
    del sys.argv[1]
    import io
    from PIL import Image
    import occlusion_synth.shards as shards_module

    def pillow_png(array):
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
    shards_module.encode_png = pillow_png
if sys.argv[1] == "--floor":
    del sys.argv[1]
    import numpy as np
    import occlusion_synth.build as build
    from occlusion_synth.shards import Sample

    def floor_make(face, library, rng, options, key, stratum=None):
        target = face.image
        mask = np.zeros(target.shape[:2], dtype=np.uint8)
        meta = {"source_id": face.source.id, "occluders": [], "categories": "", "coverage": 0.0}
        return Sample(key=key, input=target.copy(), mask=mask, target=target, meta=meta)

    real = build.run_build
    def run_build(*args, **kwargs):
        kwargs["make"] = floor_make
        return real(*args, **kwargs)
    build.run_build = run_build
from occlusion_synth.cli import main
sys.argv[0] = "occsynth"
sys.exit(main())
"""


@dataclass
class Run:
    wall: float  # seconds, launch to exit
    cpu: float  # user + system seconds of the whole process tree
    first: float | None  # seconds from launch to the first sample's bytes in a shard


def _first_bytes(folder: Path) -> bool:
    try:
        return any(p.stat().st_size > 0 for p in folder.iterdir())
    except OSError:
        return False


def run_build(
    repo: Path, args: list[str], out: Path, floor: bool = False, pillow: bool = False
) -> Run:
    """``occsynth build ARGS --out OUT`` from ``repo``'s package, in a fresh process;
    ``floor``: the I/O floor instead; ``pillow``: PNGs encoded by Pillow (level 1)."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(repo))
    env.pop("OCCSYNTH_LANDMARK_CACHE", None)
    flags = [*(["--pillow"] if pillow else []), *(["--floor"] if floor else [])]
    cmd = [sys.executable, "-c", _RUNNER, *flags, "build", *args]
    cmd += ["--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    first: list[float] = []

    def poll() -> None:
        shards_dir = out / "shards"
        while proc.poll() is None:
            if _first_bytes(shards_dir):
                first.append(time.perf_counter() - t0)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    text = proc.communicate()[0].decode("utf-8", "replace")
    wall = time.perf_counter() - t0
    watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}):\n{text[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall=wall, cpu=cpu, first=first[0] if first else None)


#: What is timed: the build, its I/O floor (the build's own PNG encoder) and, for the
#: current package, the floor with Pillow's level-1 PNG encoder (what the issue measured; the
#: baseline's own floor is that one).
KINDS = ("build", "floor", "floor-pil")


@dataclass
class Series:
    """The runs of one (package, pipeline) at each size."""

    label: str
    runs: dict[int, list[Run]] = field(default_factory=dict)

    def best(self, n: int) -> Run:
        runs = self.runs[n]
        firsts = [r.first for r in runs if r.first is not None]
        return Run(
            wall=min(r.wall for r in runs),
            cpu=min(r.cpu for r in runs),
            first=min(firsts) if firsts else None,
        )

    def margin(self, n1: int, n2: int) -> tuple[float, float, float]:
        """(samples/s at the margin, intercept s, CPU ms per extra sample)."""
        a, b = self.best(n1), self.best(n2)
        dt = max(b.wall - a.wall, 1e-9)
        rate = (n2 - n1) / dt
        return rate, a.wall - n1 / rate, 1000 * (b.cpu - a.cpu) / (n2 - n1)


def measure(
    repos: dict[str, Path],
    faces: Path,
    sizes: tuple[int, int],
    workers: int,
    repeat: int,
    work: Path,
    cache: Path,
) -> dict[str, Series]:
    """Build and floor of every package at both sizes, interleaved, ``repeat`` rounds."""
    series: dict[str, Series] = {}
    kinds = {name: KINDS if name == "current" else KINDS[:2] for name in repos}
    for name in repos:
        for kind in kinds[name]:
            series[f"{name} {kind}"] = Series(f"{name} {kind}")
    common = ["--faces", str(faces), "--workers", str(workers), "--shard-size", "1000"]
    common += ["--landmark-cache", str(cache)]
    for rnd in range(repeat):
        for n in sizes:
            for name, repo in repos.items():
                for kind in kinds[name]:
                    run = run_build(
                        repo,
                        [*common, "--n", str(n)],
                        work / "out",
                        floor=kind != "build",
                        pillow=kind == "floor-pil",
                    )
                    series[f"{name} {kind}"].runs.setdefault(n, []).append(run)
                    first = f"{run.first:.2f}" if run.first is not None else "-"
                    print(
                        f"  round {rnd + 1} {name:>8} {kind:5} n={n:<5} {run.wall:6.2f} s wall, "
                        f"{run.cpu:6.2f} s CPU, first sample {first} s",
                        flush=True,
                    )
    shutil.rmtree(work / "out", ignore_errors=True)
    return series


def report(series: dict[str, Series], repos: dict[str, Path], sizes: tuple[int, int]) -> None:
    n1, n2 = sizes
    for name in repos:
        b, f = series[f"{name} build"], series[f"{name} floor"]
        rb, ib, cb = b.margin(n1, n2)
        rf, if_, cf = f.margin(n1, n2)
        first = b.best(n1).first
        print(f"[{name}]")
        print(
            f"  build at the margin: {rb:6.1f} samples/s   start-up (intercept) {ib:4.2f} s, "
            f"CPU {cb:5.1f} ms/sample"
        )
        print(
            f"  floor at the margin: {rf:6.1f} samples/s   start-up (intercept) {if_:4.2f} s, "
            f"CPU {cf:5.1f} ms/sample"
        )
        print(
            f"  ratio build/floor at the margin: {rb / rf:.2f} (wall), {cf / cb:.2f} (CPU)"
            "   target >= 0.8"
        )
        pil = series.get(f"{name} floor-pil")
        if pil is not None:
            rp, ip, cp = pil.margin(n1, n2)
            print(
                f"  floor with Pillow PNGs (the issue's encoder): {rp:6.1f} samples/s, "
                f"CPU {cp:5.1f} ms/sample; build/that floor {rb / rp:.2f} (wall), "
                f"{cp / cb:.2f} (CPU)"
            )
        whole = n2 / b.best(n2).wall, n2 / f.best(n2).wall
        print(
            f"  whole {n2}-sample runs: build {whole[0]:.1f}, floor {whole[1]:.1f} samples/s "
            f"(ratio {whole[0] / whole[1]:.2f})"
        )
        if first is not None:
            print(f"  start-up to first sample (occsynth build): {first:.2f} s   target < 2 s")


# --------------------------------------------------------------------------- stages

#: Stage -> the (module, attribute) functions whose time is that stage's. Timers nest: a
#: stage's time excludes the stages called inside it ("align" is load_aligned less decode).
#: Names missing from a package (an older or newer checkout) are skipped.
STAGES: dict[str, list[tuple[str, str]]] = {
    "decode": [("occlusion_synth.faces", "read_rgb")],
    "align": [("occlusion_synth.recipe", "load_aligned")],
    "face stats": [("occlusion_synth.sample", "face_stats")],
    "hair cover": [("occlusion_synth.sample", "hair_cover")],
    "place": [("occlusion_synth.placement", "place")],
    "  asset prep (once)": [("occlusion_synth.placement", "_prepare")],
    "drape": [("occlusion_synth.sample", "drape")],
    "harmonise/tint/hair": [
        ("occlusion_synth.sample", "skin_ref"),
        ("occlusion_synth.sample", "harmonise_layer"),
        ("occlusion_synth.sample", "tint_layer"),
        ("occlusion_synth.sample", "put_behind_hair"),
    ],
    "compose": [("occlusion_synth.sample", "composite")],
    "re-shoot": [("occlusion_synth.compose", "_reshoot")],
    "encode PNG": [("occlusion_synth.shards", "encode_png")],
    "encode JSON": [("occlusion_synth.shards", "encode_json")],
}

#: Runs ``--stages``: K samples of a build's recipe in this process, each stage timed.
_STAGE_RUNNER = r"""
import functools, importlib, io, json, sys, time
from pathlib import Path
stages, faces, k = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import occlusion_synth.build as build
from occlusion_synth import shards
from occlusion_synth.recipe import locate_job

spent = {name: 0.0 for name in stages}
stack = [0.0]

def timed(name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        stack.append(0.0)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            dt = time.perf_counter() - t0
            inner = stack.pop()
            spent[name] += dt - inner
            stack[-1] += dt
    return wrapper

t0 = time.perf_counter()
opts = build.BuildOptions(faces=faces, n=k, out=Path("unused"), landmark_cache=None)
face_opts = opts.face_options()
recipe, _ = build.make_recipe(opts, lambda jobs: (locate_job(face_opts, j) for j in jobs), False)
setup = time.perf_counter() - t0
for name, targets in stages.items():
    for mod, attr in targets:
        module = importlib.import_module(mod)
        if hasattr(module, attr):
            setattr(module, attr, timed(name, getattr(module, attr)))
write = 0.0
t0 = time.perf_counter()
with shards.ShardWriter(Path(sys.argv[4]) / "stages.tar") as writer:
    for i in range(k):
        _, members, _ = recipe.encoded(i)
        t1 = time.perf_counter()
        writer.add(members)
        write += time.perf_counter() - t1
total = time.perf_counter() - t0
spent["write tar"] = write
spent["other"] = total - sum(spent.values())
print(json.dumps({"setup": setup, "total": total, "k": k, "spent": spent}))
"""


def stage_table(repos: dict[str, Path], faces: Path, k: int, work: Path, repeat: int) -> None:
    """Per-stage ms per sample of ``k`` samples, one process per package, best of ``repeat``."""
    import json

    results: dict[str, dict] = {}
    for _ in range(repeat):
        for name, repo in repos.items():
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _STAGE_RUNNER,
                    json.dumps(STAGES),
                    str(faces),
                    str(k),
                    str(work),
                ],
                env=dict(os.environ, PYTHONPATH=str(repo)),
                cwd=work,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f"stage run failed:\n{proc.stderr[-2000:]}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            old = results.get(name)
            if old is None:
                results[name] = got
            else:
                for stage, v in got["spent"].items():
                    old["spent"][stage] = min(old["spent"][stage], v)
                old["total"] = min(old["total"], got["total"])
    names = list(repos)
    print(f"  per-stage time, ms per sample ({k} samples, one process, best of {repeat}):")
    print("  " + f"{'stage':<22}" + "".join(f"{n:>10}" for n in names))
    for stage in [*STAGES, "write tar", "other"]:
        vals = [1000 * results[n]["spent"][stage] / k for n in names]
        print("  " + f"{stage:<22}" + "".join(f"{v:10.2f}" for v in vals))
    totals = [1000 * results[n]["total"] / k for n in names]
    print("  " + f"{'total':<22}" + "".join(f"{v:10.2f}" for v in totals))


# --------------------------------------------------------------------------- --big

_WRAPPER = """
import resource, subprocess, sys
rc = subprocess.call([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
print("maxrss_kb", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
sys.exit(rc)
"""


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


def big(faces: str, n: int, workers: int, cache: Path, work: Path) -> None:
    common = ["build", "--faces", faces, "--n", str(n), "--workers", str(workers)]
    for label, extra, name in (
        ("cached landmarks", ["--landmark-cache", str(cache)], "big"),
        ("no landmark cache", ["--no-landmark-cache"], "big-nocache"),
    ):
        shutil.rmtree(work / name, ignore_errors=True)
        wall, one, tree = big_run([*common, "--out", str(work / name), *extra])
        print(
            f"--n {n} --workers {workers}, {label}: {wall:.0f} s wall, "
            f"{n / wall:.1f} samples/s, peak RSS {one:.0f} MB (largest process), "
            f"{tree:.0f} MB (whole tree)"
        )
        shutil.rmtree(work / name, ignore_errors=True)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default=str(REPO.parent / "shared" / "data" / "celeba_small"))
    ap.add_argument("--scales", default="1,2", help="face scales to run: 1 as given, 2 upscaled")
    ap.add_argument("--sizes", default="200,600", help="the two build sizes (N1,N2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="rounds; the fastest run is kept")
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout to compare")
    ap.add_argument("--big", type=int, default=0, help="also time a build of this many samples")
    ap.add_argument("--stages", type=int, default=300, help="samples of the stage table (0: none)")
    ap.add_argument("--no-rates", action="store_true", help="only the stage table")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="occsynth-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n1, n2 = (int(v) for v in a.sizes.split(","))
    repos = {"current": REPO}
    if a.baseline is not None:
        repos = {"baseline": a.baseline.resolve(), "current": REPO}
    print(f"workers {a.workers}, cpu cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    for scale in (int(s) for s in a.scales.split(",")):
        faces = annotated_faces(Path(a.faces), work / f"faces_x{scale}", scale)
        cache = work / f"landmarks_x{scale}.parquet"
        shape = "89x109 as given" if scale == 1 else f"upscaled x{scale}"
        print(f"== annotated CelebA faces, {shape} ({faces})")
        if a.stages:
            stage_table(repos, faces, a.stages, work, a.repeat)
        if not a.no_rates:
            series = measure(repos, faces, (n1, n2), a.workers, a.repeat, work, cache)
            report(series, repos, (n1, n2))
        print(f"   (load average now {os.getloadavg()[0]:.1f})")
        if a.big:
            big(str(faces), a.big, a.workers, cache, work)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
