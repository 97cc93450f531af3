"""``occsynth merge``: finish a build made as partitions (``occsynth build --partition I/K``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.location import LOCATION


@click.command("merge", cls=Command)
@click.argument("out", type=LOCATION)
def merge(out: Path | str) -> None:
    """Merge the partitions of a build in OUT (a folder or a URL such as s3://bucket/prefix).

    Once every partition of `occsynth build --partition I/K` has finished, this writes what a
    single build of the same options writes: manifest.parquet (byte-identical), dataset.json
    (whose `partitions` entry lists the K commands), rejects.csv and preview.png; then it
    removes .partial/. It refuses, in one line and before writing anything, when a partition
    is missing or unfinished, when one was built with other options, faces or occluders than
    partition 0, or when a shard of one is missing. Shards that no partition claims (left
    by a partition redone with --overwrite and other options) are removed.

    \b
    Example (a Slurm array of 8 tasks, then one merge):
      occsynth build --faces /data/celeba --n 200000 --out /shared/occ \\
          --partition $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
      occsynth merge /shared/occ
    """
    from occlusion_synth.build import merge as merge_partitions

    result = merge_partitions(out, command=["occsynth", *sys.argv[1:]], echo=click.echo)
    per_split = ", ".join(f"{k} {v}" for k, v in result.counts.items() if v)
    click.echo(
        f"merged {result.kept_shards} shard(s): {result.samples} samples ({per_split}) in "
        f"{result.out}; {result.rejects} rejected source(s); {result.seconds:.1f} s"
    )
