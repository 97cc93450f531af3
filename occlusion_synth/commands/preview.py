"""``occsynth preview``: a contact sheet of synthetic samples (input | mask | target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.location import LOCATION
from occlusion_synth.commands.options import (
    cache_spec,
    categories_option,
    faces_option,
    landmark_options,
    max_occluders_option,
    max_outside_option,
    occluders_dir_option,
    out_file_option,
    seed_option,
)
from occlusion_synth.errors import UserError
from occlusion_synth.storage import Location


def _samples_from_faces(options: Any, progress: bool = True) -> list:
    """Samples ``0..n-1`` exactly as ``occsynth build`` with the same options makes them."""
    from occlusion_synth.build import make_recipe
    from occlusion_synth.preview import sample_label
    from occlusion_synth.progress import Progress
    from occlusion_synth.recipe import locate_job

    faces = options.face_options()
    recipe, rejects = make_recipe(
        options, lambda jobs: (locate_job(faces, job) for job in jobs), progress
    )
    for source, reason in rejects:
        click.echo(f"skipped {source}: {reason}", err=True)
    rows = []
    bar = Progress(options.n, "preview", "sample", enabled=progress)
    try:
        for i in range(options.n):
            s = recipe.make(i).sample
            rows.append((s.input, s.mask, s.target, sample_label(i, s.meta)))
            bar.update()
    finally:
        bar.close()
    return rows


def _samples_from_dataset(root: Location, n: int):
    """The first ``n`` samples of a built dataset."""
    from occlusion_synth.preview import dataset_rows
    from occlusion_synth.shards import ShardError

    try:
        rows = dataset_rows(root, n)
    except (FileNotFoundError, ShardError) as exc:
        raise UserError(f"--from {root}: {exc}") from None
    if not rows:
        raise UserError(f"--from {root}: the dataset holds no samples")
    return rows


@click.command("preview", cls=Command)
@faces_option(required=False)
@click.option(
    "--from",
    "from_dir",
    type=LOCATION,
    help="Draw the samples from a built dataset instead (a folder made by `occsynth build`, "
    "or its URL: s3://bucket/x).",
)
@click.option(
    "--n",
    default=16,
    show_default=True,
    type=click.IntRange(1, 512),
    help="Number of samples (rows).",
)
@seed_option
@categories_option
@max_occluders_option
@occluders_dir_option
@landmark_options
@max_outside_option
@out_file_option("Where to write the sheet (PNG).")
def preview(
    faces: str | None,
    from_dir: Location | None,
    n: int,
    seed: int,
    categories: str | None,
    max_occluders: int,
    occluders_dir: Path | None,
    landmarks: str,
    face_landmarker_task: Path | None,
    landmark_cache: Path | None,
    no_landmark_cache: bool,
    max_outside: float,
    out: Path,
) -> None:
    """Draw a contact sheet of samples (input | mask | target), laid out as a grid.

    With --faces, the sheet shows samples 0..n-1 of `occsynth build` with the same
    --faces, --seed and sample options, pixel for pixel. Each sample is labelled with the
    occluders' names and categories, the fraction of the frame that is masked and the
    source face. Faces that cannot be used are skipped with a message.

    \b
    Examples:
      occsynth preview --faces demo --n 8 --out sheet.png
      occsynth preview --faces /data/celeba --categories sunglasses:2,hand --out s.png
      occsynth preview --from data/ --n 16 --out sheet.png
    """
    from occlusion_synth.build import BuildOptions
    from occlusion_synth.preview import draw_sample_sheet

    if (faces is None) == (from_dir is None):
        raise UserError("give exactly one of --faces PATH|demo or --from DIR")
    if from_dir is not None:
        rows = _samples_from_dataset(from_dir, n)
        title = str(from_dir)
    else:
        options = BuildOptions(
            faces=faces,
            n=n,
            out=out.parent,
            seed=seed,
            categories=categories,
            max_occluders=max_occluders,
            occluders_dir=str(occluders_dir) if occluders_dir else None,
            landmarks=landmarks,
            max_outside=max_outside,
            landmark_cache=cache_spec(landmark_cache, no_landmark_cache),
            face_landmarker_task=str(face_landmarker_task) if face_landmarker_task else None,
        )
        rows = _samples_from_faces(options)
        title = f"{faces}  seed {seed}"
    draw_sample_sheet(rows, out, title=title)
    click.echo(f"wrote {out} ({len(rows)} samples)")
