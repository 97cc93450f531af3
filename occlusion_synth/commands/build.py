"""``occsynth build``: make a synthetic occluded-face dataset (WebDataset shards)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.location import LOCATION
from occlusion_synth.commands.options import (
    cache_spec,
    categories_option,
    faces_option,
    file_option,
    landmark_options,
    max_occluders_option,
    max_outside_option,
    occluders_dir_option,
    seed_option,
)


@click.command("build", cls=Command)
@faces_option(required=True)
@click.option(
    "--n",
    "n",
    required=True,
    type=click.IntRange(1),
    help="Samples, all splits (at most 10,000,000).",
)
@click.option(
    "--out",
    required=True,
    type=LOCATION,
    help="Output folder (shards/, manifest.parquet, dataset.json, rejects.csv, preview.png), "
    "or a URL such as s3://bucket/prefix (each shard is uploaded whole once complete).",
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
@click.option(
    "--source-weights",
    metavar="SRC:W,...",
    help="Weigh each category's variants by where they come from: `drawn` (bundled, or your "
    "own PNGs) or `harvested` (cut from photos by `occsynth occluders harvest`), e.g. "
    "`harvested:3` (a source not named keeps weight 1). Default: every variant equally.",
)
@landmark_options
@click.option(
    "--split",
    "split_text",
    default=None,
    metavar="TRAIN,VAL,TEST",
    help="Split fractions, e.g. 0.8,0.1,0.1: whole source images go to a split by a hash of "
    "their name. Given, they override CelebA's official partition. Default: the partition "
    "where the faces have one (CelebA, the demo faces), else 0.8,0.1,0.1. Weights that do "
    "not sum to 1 (8,1,1) are normalised, with a note.",
)
@max_outside_option
@file_option(
    "--exclude",
    default=None,
    help="Leave out the faces this file lists (listed in rejects.csv with the reason): "
    "occsynth screen's CSV of faces that already wear or hold an occluder, or a text file "
    "with one face id per line (ids as in rejects.csv, e.g. img_align_celeba/000293.jpg).",
)
@click.option(
    "--distributor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where samples are made. local: --workers processes on this machine. ray: one Ray "
    "task per shard (and per batch of faces to detect), each writing its shard to --out "
    "itself, so --out must be reachable from every node (a shared folder or a URL). The "
    "output is byte-identical either way. Needs pip install 'occlusion-synth[ray]'.",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDRESS",
    help="With --distributor ray: the Ray cluster to run on (host:6379 as printed by ray start "
    "--head, ray://host:10001, or auto). Default: $RAY_ADDRESS when set, else a Ray runtime "
    "started here with --workers CPUs and stopped at the end. Every node needs "
    "occlusion-synth installed and --faces at the same path.",
)
@click.option(
    "--partition",
    "partition_text",
    default=None,
    metavar="I/K",
    help="Build only partition I of K (0 <= I < K): the shards at positions I, I+K, I+2K... "
    "of the plan, e.g. one Slurm array task each. Partitions run side by side in the same "
    "--out (each with its own lock and --resume); when all K are done, occsynth merge OUT "
    "writes the manifest and the dataset card, the same as a single build.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted build in --out: complete shards are kept, the rest are made "
    "again (also after a killed Ray driver or worker, or with another --distributor).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a previous build in --out (with --partition: only that partition's shards).",
)
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
    source_weights: str | None,
    landmarks: str,
    face_landmarker_task: Path | None,
    landmark_cache: Path | None,
    no_landmark_cache: bool,
    split_text: str | None,
    max_outside: float,
    exclude: Path | None,
    distributor: str,
    ray_address: str | None,
    partition_text: str | None,
    resume: bool,
    overwrite: bool,
) -> None:
    """Build a dataset of (occluded input, mask, target) triples as WebDataset shards.

    Sample i draws only from a generator seeded by (seed, i), so the same command gives
    byte-identical shards for any --workers. A face's split is CelebA's partition when the
    root has one (the demo faces have one too), else --split assigns whole source images by
    a hash of their name; an explicit --split overrides the partition. Interrupted builds
    continue with --resume and end with the same bytes. A build that fails before its first
    sample leaves --out as it was. With stderr redirected to a log, progress is one line
    every 30 s (OCCSYNTH_PROGRESS_INTERVAL).

    To build at scale, run the shards as Ray tasks (--distributor ray, on this machine or a
    cluster with --ray-address), or split the build into K jobs with --partition I/K and
    finish it with occsynth merge; both give the same bytes as one local build.

    \b
    Examples:
      occsynth build --faces demo --n 64 --out demo_out
      occsynth build --faces /data/celeba --n 20000 --out data/ --categories sunglasses:2,hand
      occsynth build --faces /data/celeba --n 20000 --out data/ --resume
      occsynth build --faces /data/celeba --n 200000 --out s3://bucket/occ \\
          --distributor ray --ray-address head:6379
      occsynth build --faces /data/celeba --n 200000 --out /shared/occ --partition 3/8
      occsynth merge /shared/occ
    """
    from occlusion_synth.build import BuildInterrupted, BuildOptions, run_build, summary
    from occlusion_synth.errors import UserError
    from occlusion_synth.partition import Partition
    from occlusion_synth.splits import parse_split, split_note

    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if ray_address is not None and distributor != "ray":
        raise UserError("--ray-address needs --distributor ray")
    partition = None if partition_text is None else Partition.parse(partition_text)
    split = None if split_text is None else parse_split(split_text)
    if split_text is not None and split_note(split_text):
        click.echo(split_note(split_text), err=True)
    cache = cache_spec(landmark_cache, no_landmark_cache)
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
        source_weights=source_weights,
        landmarks=landmarks,
        split=split,
        max_outside=max_outside,
        exclude=None if exclude is None else str(exclude),
        resume=resume,
        overwrite=overwrite,
        landmark_cache=cache,
        face_landmarker_task=str(face_landmarker_task) if face_landmarker_task else None,
        distributor=distributor,
        ray_address=ray_address,
        partition=partition,
        command=["occsynth", *sys.argv[1:]],
    )
    try:
        result = run_build(options, echo=click.echo)
    except BuildInterrupted as exc:
        click.echo(str(exc), err=True)
        sys.exit(130)
    click.echo(summary(result))
