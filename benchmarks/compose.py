"""Compositing cost per sample on one core: placement + warp + blend + mask.

Faces are loaded and their landmarks found once, before timing; file I/O and landmark
detection are excluded. Per-face statistics are computed on a face's first sample and
cached, as in a build. Prints per-category and overall median / mean milliseconds, and the
share spent in ``compose.composite``. Times are the thread's CPU time (``time.thread_time``),
so other processes sharing the machine do not inflate them.

    python benchmarks/compose.py [--faces demo] [--per-category 60] [--occluders-dir DIR]

With ``--occluders-dir`` (a folder made by ``occsynth occluders harvest``) it also times the
harvested occluders of each category against the drawn ones of the same category, the
harvested ones including the colour harmonisation ``sample.make_sample`` applies to them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from occlusion_synth import compose, placement, sample  # noqa: E402
from occlusion_synth.faces import discover_faces, load_aligned  # noqa: E402
from occlusion_synth.imageio import Reject  # noqa: E402
from occlusion_synth.occluders.library import OccluderLibrary  # noqa: E402
from occlusion_synth.placement import place  # noqa: E402


def _time_samples(faces, library, cat: str, n: int) -> list[float]:
    opts = sample.SampleOptions(category_weights={cat: 1.0})
    times = []
    for i in range(n):
        face = faces[i % len(faces)]
        rng = np.random.default_rng([1, i])
        t = time.thread_time()
        sample.make_sample(face, library, rng, opts)
        times.append((time.thread_time() - t) * 1e3)
    return times


def compare_harvested(faces, folder: str, n: int) -> None:
    """Median ms/sample of harvested vs drawn occluders, category by category."""
    everything = OccluderLibrary.load([folder])
    real = [o for o in everything.occluders if o.harvest is not None]
    if not real:
        print(f"{folder}: no harvested occluders")
        return
    cats = sorted({o.category for o in real})
    drawn = [o for o in everything.occluders if o.harvest is None and o.category in cats]
    libs = {"harvested": OccluderLibrary(real), "drawn": OccluderLibrary(drawn)}
    for lib in libs.values():  # warm-up: per-asset caches
        for occ in lib.occluders:
            placement.place(occ, faces[0].landmarks, np.random.default_rng(0))
    print(f"\nharvested ({folder}) vs drawn, median ms/sample, {n} samples each")
    print(f"{'category':<14} {'harvested':>10} {'drawn':>9} {'difference':>11}")
    diffs = []
    for cat in cats:
        h = float(np.median(_time_samples(faces, libs["harvested"], cat, n)))
        have_drawn = any(o.category == cat for o in drawn)
        d = float(np.median(_time_samples(faces, libs["drawn"], cat, n))) if have_drawn else None
        diff = None if d is None else h - d
        if diff is not None:
            diffs.append(diff)
        ds = "-" if d is None else f"{d:.2f}"
        fs = "-" if diff is None else f"{diff:+.2f}"
        print(f"{cat:<14} {h:>10.2f} {ds:>9} {fs:>11}")
    if diffs:
        worst = max(diffs)
        verdict = "OK" if worst <= 5 else "OVER"
        print(f"target: harvested within 5 ms/sample of drawn -> {verdict} (worst {worst:+.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default="demo")
    ap.add_argument("--max-faces", type=int, default=8)
    ap.add_argument("--per-category", type=int, default=60)
    ap.add_argument("--landmarks", default="auto")
    ap.add_argument("--occluders-dir", help="also time these harvested occluders vs drawn ones")
    args = ap.parse_args()
    cv2.setNumThreads(1)

    faces = []
    for src in discover_faces(args.faces)[: args.max_faces]:
        try:
            faces.append(load_aligned(src, provider=args.landmarks))
        except Reject:
            pass
    library = OccluderLibrary.load()

    # Time compose.composite separately by wrapping it.
    composite_ms: list[float] = []
    real_composite = compose.composite

    def timed_composite(*a, **k):
        t = time.thread_time()
        out = real_composite(*a, **k)
        composite_ms.append((time.thread_time() - t) * 1e3)
        return out

    sample.composite = timed_composite
    # Warm-up: per-face statistics and each asset's placement cache are made once per
    # process in a build too (the first sample of a face / of an asset).
    for face in faces:
        sample.make_sample(face, library, np.random.default_rng(0))
    for occ in library.occluders:
        place(occ, faces[0].landmarks, np.random.default_rng(0))
    composite_ms.clear()

    results: dict[str, list[float]] = {}
    comp: dict[str, list[float]] = {}
    for cat in library.categories:
        opts = sample.SampleOptions(category_weights={cat: 1.0})
        times = []
        composite_ms.clear()
        for i in range(args.per_category):
            face = faces[i % len(faces)]
            rng = np.random.default_rng([1, i])
            t = time.thread_time()
            sample.make_sample(face, library, rng, opts)
            times.append((time.thread_time() - t) * 1e3)
        results[cat] = times
        comp[cat] = list(composite_ms)
    sample.composite = real_composite

    print(f"faces: {args.faces} ({len(faces)}), one core, {args.per_category} samples/category")
    print(f"{'category':<14} {'median ms':>10} {'mean ms':>9} {'composite ms':>13}")
    for cat, times in results.items():
        print(
            f"{cat:<14} {np.median(times):>10.2f} {np.mean(times):>9.2f} "
            f"{np.median(comp[cat]):>13.2f}"
        )
    every = np.concatenate([np.asarray(t) for t in results.values()])
    allc = np.concatenate([np.asarray(t) for t in comp.values()])
    print(
        f"{'overall':<14} {np.median(every):>10.2f} {np.mean(every):>9.2f} {np.median(allc):>13.2f}"
    )
    print(f"target: <= 5 ms per sample -> {'OK' if np.median(every) <= 5 else 'OVER'} (median)")
    if args.occluders_dir:
        compare_harvested(faces, args.occluders_dir, args.per_category)


if __name__ == "__main__":
    main()
