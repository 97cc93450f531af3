"""``occsynth preview``: a contact sheet of synthetic samples (input | mask | target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from occlusion_synth.commands.options import (
    categories_option,
    faces_option,
    landmarks_option,
    max_occluders_option,
    occluders_dir_option,
    out_file_option,
    seed_option,
)
from occlusion_synth.errors import UserError


def _samples_from_faces(
    faces: str,
    n: int,
    seed: int,
    categories: str | None,
    max_occluders: int,
    provider: str,
    occluders_dir: Path | None,
):
    """Make ``n`` samples from the faces named by ``faces``; rejected faces are skipped."""
    import numpy as np
    from tqdm import tqdm

    from occlusion_synth.faces import DEFAULT_MAX_OUTSIDE, discover_faces, load_aligned
    from occlusion_synth.imageio import Reject
    from occlusion_synth.landmarks import check_provider
    from occlusion_synth.occluders.library import OccluderLibrary
    from occlusion_synth.preview import sample_label
    from occlusion_synth.sample import SampleOptions, make_sample

    provider = check_provider(provider)
    sources = discover_faces(faces)
    library = OccluderLibrary.load([occluders_dir] if occluders_dir else None)
    options = SampleOptions.from_cli(categories, max_occluders, known=library.categories)
    # A seeded spread over the sources, cycling when there are fewer faces than samples.
    order = np.random.default_rng(seed).permutation(len(sources))
    aligned: dict[int, object] = {}
    rejected: set[int] = set()
    rows = []
    cursor = 0
    with tqdm(total=n, desc="preview", unit="sample", leave=False) as bar:
        while len(rows) < n:
            if len(rejected) == len(sources):
                raise UserError(f"--faces {faces}: no usable face (all were rejected)")
            idx = int(order[cursor % len(order)])
            cursor += 1
            if idx in rejected:
                continue
            if idx not in aligned:
                try:
                    aligned[idx] = load_aligned(
                        sources[idx], provider=provider, max_outside=DEFAULT_MAX_OUTSIDE
                    )
                except Reject as exc:
                    rejected.add(idx)
                    tqdm.write(f"skipped {sources[idx].id}: {exc}")
                    continue
            i = len(rows)
            sample = make_sample(
                aligned[idx], library, np.random.default_rng([seed, i]), options, key=f"{i:06d}"
            )
            rows.append((sample.input, sample.mask, sample.target, sample_label(i, sample.meta)))
            bar.update()
    return rows


def _samples_from_dataset(root: Path, n: int):
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


@click.command("preview")
@faces_option(required=False)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Draw the samples from a built dataset instead (a folder made by `occsynth build`).",
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
@landmarks_option("provider")
@occluders_dir_option
@out_file_option("Where to write the sheet (PNG).")
def preview(
    faces: str | None, from_dir: Path | None, n: int, seed: int, out: Path, **sample_options: Any
) -> None:
    """Draw a contact sheet: one row per sample, showing input | mask | target.

    Each row is labelled with the occluders' names and categories, the fraction of the
    frame that is masked and the source face. Faces that cannot be used are skipped with
    a message.

    \b
    Examples:
      occsynth preview --faces demo --n 8 --out sheet.png
      occsynth preview --faces /data/celeba --categories sunglasses:2,hand --out s.png
      occsynth preview --from data/ --n 16 --out sheet.png
    """
    # sample_options: categories, max_occluders, provider, occluders_dir (see the helper)
    from occlusion_synth.preview import draw_sample_sheet

    if (faces is None) == (from_dir is None):
        raise UserError("give exactly one of --faces PATH|demo or --from DIR")
    if from_dir is not None:
        rows = _samples_from_dataset(from_dir, n)
        title = str(from_dir)
    else:
        rows = _samples_from_faces(faces, n, seed, **sample_options)
        title = f"{faces}  seed {seed}"
    draw_sample_sheet(rows, out, title=title)
    click.echo(f"wrote {out} ({len(rows)} samples)")
