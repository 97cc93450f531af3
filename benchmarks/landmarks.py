"""Faces per second per core of ``faces.load_aligned`` for each landmark provider.

Usage: ``python benchmarks/landmarks.py [--faces PATH] [--n 200]``. Uses
``../shared/data/celeba_small`` when present (else the demo faces, repeated). Prints, for
each provider (celeba annotations, MediaPipe detection, cached detections), faces per
wall-clock second and per CPU second (= per core: OpenCV is held to one thread, so the CPU
figure is what each worker of a parallel build delivers).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from occlusion_synth import faces
from occlusion_synth.landmark_cache import LandmarkCache
from occlusion_synth.landmarks import get_detector

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba_small"


def _measure(label: str, sources: list, **kwargs) -> None:
    ok = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for src in sources:
        try:
            faces.load_aligned(src, **kwargs)
            ok += 1
        except faces.Reject:
            pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(sources)
    print(
        f"{label:<10} {n:5d} faces ({ok} ok)  {n / wall:8.1f} faces/s wall  "
        f"{n / cpu:8.1f} faces/s per core  {1e3 * cpu / n:7.2f} ms CPU/face"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(SHARED) if SHARED.is_dir() else "demo")
    parser.add_argument("--n", type=int, default=200, help="faces per provider")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    sources = faces.discover_faces(args.faces)
    annotated = [s for s in sources if s.annotation is not None]
    pool = (sources * (1 + args.n // len(sources)))[: args.n]
    print(f"faces: {args.faces} ({len(sources)} sources, {len(annotated)} annotated)")
    detector = get_detector()
    faces.load_aligned(pool[0], provider="mediapipe", detector=detector)  # warm up
    if annotated:
        ann = (annotated * (1 + args.n // len(annotated)))[: args.n]
        _measure("celeba", ann, provider="celeba")
    with tempfile.TemporaryDirectory() as tmp:
        cache = LandmarkCache(Path(tmp) / "landmarks.parquet")
        unique = list(dict.fromkeys(pool))
        _measure("mediapipe", unique, provider="mediapipe", detector=detector, cache=cache)
        cache.save()
        cache = LandmarkCache(Path(tmp) / "landmarks.parquet")
        _measure("cached", pool, provider="mediapipe", detector=detector, cache=cache)


if __name__ == "__main__":
    main()
