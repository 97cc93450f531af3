"""``occsynth landmarks``: find the canonical landmarks of every face and write them to Parquet."""

from __future__ import annotations

import time
from pathlib import Path

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.options import (
    cache_spec,
    faces_option,
    landmark_options,
    out_file_option,
)


@click.command("landmarks", cls=Command)
@faces_option(required=True)
@out_file_option("Parquet file to write (one row per face); rejects.csv is written beside it.")
@landmark_options
def landmarks(
    faces: str,
    out: Path,
    landmarks: str,
    face_landmarker_task: Path | None,
    landmark_cache: Path | None,
    no_landmark_cache: bool,
) -> None:
    """Find the landmarks of every face and write them, in 256x256 canonical coordinates.

    Each row holds the face's id (`source`), its CelebA split, the provider that found
    it, the names filled in from the mean face shape (`estimated`), and every canonical
    point as `<name>_x, <name>_y`. Faces that cannot be used are listed with the reason
    in rejects.csv beside the output.
    """
    import pandas as pd

    from occlusion_synth.build import open_cache
    from occlusion_synth.canonical import POINT_NAMES
    from occlusion_synth.faces import Reject, discover_faces, load_aligned
    from occlusion_synth.landmarks import get_detector
    from occlusion_synth.progress import Progress

    start = time.perf_counter()
    provider = landmarks
    sources = discover_faces(faces)
    detector = None  # the bundled Face Mesh starts lazily, on the first cache miss
    if face_landmarker_task is not None and provider != "celeba":
        detector = get_detector(face_landmarker_task)
    store = open_cache(cache_spec(landmark_cache, no_landmark_cache))
    rows, rejects = [], []
    bar = Progress(len(sources), "landmarks", "face")
    try:
        for src in sources:
            bar.update()
            try:
                face = load_aligned(src, provider=provider, detector=detector, cache=store)
            except Reject as exc:
                rejects.append({"source": src.id, "reason": exc.reason})
                continue
            lm = face.landmarks
            row = {
                "source": src.id,
                "split": src.split,
                "provider": lm.provider,
                "estimated": ",".join(n for n in POINT_NAMES if n in lm.estimated),
            }
            row.update(lm.flat())
            rows.append(row)
    finally:
        bar.close()
        if store is not None:
            store.save()
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["source", "split", "provider", "estimated"]
    columns += [f"{n}_{c}" for n in POINT_NAMES for c in "xy"]
    pd.DataFrame(rows, columns=columns).to_parquet(out, index=False)
    rejects_path = out.parent / "rejects.csv"
    pd.DataFrame(rejects, columns=["source", "reason"]).to_csv(rejects_path, index=False)
    seconds = time.perf_counter() - start
    click.echo(
        f"{len(sources)} faces found, {len(rows)} with landmarks, {len(rejects)} rejected "
        f"in {seconds:.1f} s -> {out} (rejects: {rejects_path})"
    )
