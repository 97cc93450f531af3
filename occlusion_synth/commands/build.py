"""``occsynth build``: make a synthetic occluded-face dataset (WebDataset shards)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from occlusion_synth.commands.options import (
    categories_option,
    faces_option,
    file_option,
    landmarks_option,
    max_occluders_option,
    occluders_dir_option,
    seed_option,
)


@click.command("build")
@faces_option(required=True)
@click.option("--n", "n", required=True, type=click.IntRange(1), help="Samples, all splits.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (shards/, manifest.parquet, dataset.json, rejects.csv, preview.png).",
)
@seed_option
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(0),
    help="Worker processes (default: all cores). The output is the same for any number.",
)
@click.option(
    "--shard-size",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Samples per tar shard.",
)
@categories_option
@max_occluders_option
@occluders_dir_option
@landmarks_option()
@click.option(
    "--split",
    "split_text",
    default="0.8,0.1,0.1",
    show_default=True,
    metavar="TRAIN,VAL,TEST",
    help="Split fractions for faces without a CelebA partition (whole source images).",
)
@click.option(
    "--max-outside",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Reject a face (rejects.csv) when more than this fraction of its 256x256 frame lies "
    "outside the photo, as with photos cropped tightly around the face; the outside is "
    "filled from the photo's edge, which a model should not learn from.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted build in --out.")
@click.option("--overwrite", is_flag=True, help="Replace a previous build in --out.")
@file_option(
    "--landmark-cache",
    help="Landmark cache file (default: ~/.cache/occsynth/landmarks.parquet or "
    "$OCCSYNTH_LANDMARK_CACHE).",
)
@click.option("--no-landmark-cache", is_flag=True, help="Detect landmarks without a cache.")
def build(
    faces: str,
    n: int,
    out: Path,
    seed: int,
    workers: int,
    shard_size: int,
    categories: str | None,
    max_occluders: int,
    occluders_dir: Path | None,
    landmarks: str,
    split_text: str,
    max_outside: float,
    resume: bool,
    overwrite: bool,
    landmark_cache: Path | None,
    no_landmark_cache: bool,
) -> None:
    """Build a dataset of (occluded input, mask, target) triples as WebDataset shards.

    Sample i draws only from a generator seeded by (seed, i), so the same command gives
    byte-identical shards for any --workers. A face's split is CelebA's partition when the
    root has one, else --split assigns whole source images by a hash of their name.
    Interrupted builds continue with --resume and end with the same bytes.

    \b
    Examples:
      occsynth build --faces demo --n 64 --out demo_out
      occsynth build --faces /data/celeba --n 20000 --out data/ --categories sunglasses:2,hand
      occsynth build --faces /data/celeba --n 20000 --out data/ --resume
    """
    from occlusion_synth.build import BuildInterrupted, BuildOptions, run_build, summary
    from occlusion_synth.errors import UserError
    from occlusion_synth.splits import parse_split

    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if landmark_cache is not None and no_landmark_cache:
        raise UserError("--landmark-cache and --no-landmark-cache exclude each other")
    cache = None if no_landmark_cache else str(landmark_cache or "default")
    options = BuildOptions(
        faces=faces,
        n=n,
        out=out,
        seed=seed,
        workers=workers,
        shard_size=shard_size,
        categories=categories,
        max_occluders=max_occluders,
        occluders_dir=str(occluders_dir) if occluders_dir else None,
        landmarks=landmarks,
        split=parse_split(split_text),
        max_outside=max_outside,
        resume=resume,
        overwrite=overwrite,
        landmark_cache=cache,
        command=["occsynth", *sys.argv[1:]],
    )
    try:
        result = run_build(options, echo=click.echo)
    except BuildInterrupted as exc:
        click.echo(str(exc), err=True)
        sys.exit(130)
    click.echo(summary(result))
