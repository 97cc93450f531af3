"""``occsynth landmarks``: find the canonical landmarks of every face and write them to Parquet."""

from __future__ import annotations

import time
from pathlib import Path

import click

from occlusion_synth.commands.options import file_option, out_file_option, provider_option


@click.command("landmarks")
@click.option(
    "--faces",
    "faces_spec",
    required=True,
    help="A CelebA root, any folder of photos (searched recursively), one image, or 'demo'.",
)
@out_file_option("Parquet file to write (one row per face); rejects.csv is written beside it.")
@provider_option(
    "--provider",
    help="celeba: annotation file only; mediapipe: detect; auto: annotation when present.",
)
@file_option(
    "--face-landmarker-task",
    default=None,
    help="Use MediaPipe's Tasks FaceLandmarker with this face_landmarker.task model file "
    "instead of the bundled Face Mesh.",
)
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Reuse and store detections in the landmark cache.",
)
@file_option(
    "--cache-file",
    default=None,
    help="Landmark cache file [default: $XDG_CACHE_HOME/occsynth/landmarks.parquet].",
)
def landmarks(
    faces_spec: str,
    out: Path,
    provider: str,
    face_landmarker_task: Path | None,
    cache: bool,
    cache_file: Path | None,
) -> None:
    """Find the landmarks of every face and write them, in 256x256 canonical coordinates.

    Each row holds the face's id (`source`), its CelebA split, the provider that found
    it, the names filled in from the mean face shape (`estimated`), and every canonical
    point as `<name>_x, <name>_y`. Faces that cannot be used are listed with the reason
    in rejects.csv beside the output.
    """
    import pandas as pd
    from tqdm import tqdm

    from occlusion_synth.canonical import POINT_NAMES
    from occlusion_synth.faces import Reject, discover_faces, load_aligned
    from occlusion_synth.landmark_cache import LandmarkCache
    from occlusion_synth.landmarks import get_detector

    start = time.perf_counter()
    sources = discover_faces(faces_spec)
    detector = None  # the bundled Face Mesh starts lazily, on the first cache miss
    if face_landmarker_task is not None and provider != "celeba":
        detector = get_detector(face_landmarker_task)
    store = LandmarkCache(cache_file) if cache else None
    rows, rejects = [], []
    try:
        for src in tqdm(sources, desc="landmarks", unit="face", dynamic_ncols=True):
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
