"""``occsynth screen``: list the faces that already show an occluder, for ``build --exclude``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.options import (
    cache_spec,
    faces_option,
    file_option,
    landmark_options,
    out_file_option,
)

#: The share of a face's photo pixels a segmenter may mark before the face is flagged.
DEFAULT_THRESHOLD = 0.02


@click.command("screen", cls=Command)
@faces_option(required=True)
@click.option(
    "--segmenter",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Occlusion segmenter checkpoint (fdsgan-train --config segmenter). Needs the "
    "[train] extra.",
)
@out_file_option("CSV to write: every face with its occluded share and whether it is flagged.")
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Flag a face when the segmenter marks more than this share of its photo's pixels in "
    "the 256x256 frame.",
)
@file_option("--sheet", default=None, help="Also draw the flagged faces on this PNG sheet.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@landmark_options
def screen(
    faces: str,
    segmenter: Path,
    out: Path,
    threshold: float,
    sheet: Path | None,
    device: str,
    landmarks: str,
    face_landmarker_task: Path | None,
    landmark_cache: Path | None,
    no_landmark_cache: bool,
) -> None:
    """List the faces whose photo already shows an occluder, so a build can leave them out.

    A face that already wears sunglasses or holds a hand or a microphone to its mouth makes
    wrong samples: the untouched target still shows that occluder, and the mask misses it.
    Each face is aligned as a build aligns it and an occlusion segmenter marks what it
    takes for an occluder; a face is flagged when more than --threshold of its photo is
    marked. Look at the --sheet before you trust the list: the segmenter can mistake a dark
    beard or a hat for an occluder.

    \b
    Example:
      occsynth screen --faces data/celeba --segmenter runs/seg/checkpoints/last.pt \\
          --out celeba_screen.csv --sheet celeba_flagged.png
      occsynth build --faces data/celeba --n 20000 --out data/fd20k --exclude celeba_screen.csv
    """
    import pandas as pd

    from fdsgan_train.requirements import require_torch

    require_torch("occsynth screen", ("torch",))
    from fdsgan_train.screen import screen_faces, write_sheet
    from fdsgan_train.segmenter import Segmenter
    from occlusion_synth.build import open_cache
    from occlusion_synth.exclude import FLAGGED, REASON, SOURCE
    from occlusion_synth.faces import discover_faces, load_aligned
    from occlusion_synth.landmarks import get_detector
    from occlusion_synth.progress import Progress

    start = time.perf_counter()
    model = Segmenter.from_checkpoint(segmenter, device)
    sources = discover_faces(faces)
    detector = None  # the bundled Face Mesh starts lazily, on the first cache miss
    if face_landmarker_task is not None and landmarks != "celeba":
        detector = get_detector(face_landmarker_task)
    store = open_cache(cache_spec(landmark_cache, no_landmark_cache))
    bar = Progress(len(sources), "screening", "face")

    def align(src):
        return load_aligned(src, provider=landmarks, detector=detector, cache=store)

    try:
        result = screen_faces(sources, align, model, threshold, progress=bar.update)
    finally:
        bar.close()
        if store is not None:
            store.save()
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = [SOURCE, "split", "occluded", FLAGGED, REASON]
    rejects_path = out.with_name(out.stem + ".rejects.csv")
    for path, frame in (
        (out, pd.DataFrame(result.rows, columns=columns)),
        (rejects_path, pd.DataFrame(result.rejects, columns=[SOURCE, REASON])),
    ):
        partial = path.with_name(path.name + ".tmp")  # never a half-written list
        frame.to_csv(partial, index=False)
        partial.replace(path)
    drawn = write_sheet(result, sheet) if sheet is not None else None
    seconds = time.perf_counter() - start
    click.echo(
        f"{len(result.rows)} faces screened, {result.flagged} flagged (more than "
        f"{100 * threshold:g} % marked), {len(result.rejects)} not aligned, in {seconds:.1f} s"
        f" -> {out}" + (f", sheet {drawn}" if drawn else "")
    )
    if result.flagged:
        click.echo(f"leave them out of a build with: occsynth build ... --exclude {out}")
