"""``occsynth verify``: check every shard and sample of a built dataset."""

from __future__ import annotations

import os
import sys

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.location import LOCATION
from occlusion_synth.storage import Location


@click.command("verify", cls=Command)
@click.argument("root", metavar="DIR|URL", type=LOCATION)
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(0),
    help="Processes reading shards (default: all cores).",
)
def verify(root: Location, workers: int) -> None:
    """Check a dataset built by `occsynth build`, in a folder or at a URL (s3://bucket/x).

    Reads every shard safely (no extraction; links, absolute paths and `..` refused) and
    checks every sample: four members, PNGs that decode, 256x256 sizes and modes, a mask of
    only 0 and 255, input equal to target outside the mask, metadata consistent with the
    manifest, unique keys, counts against dataset.json and no leftover partial files.
    Prints a summary; exits with status 1 listing every problem when there is one. Shards
    at a URL are streamed, never downloaded whole.
    """
    from tqdm import tqdm

    from occlusion_synth import storage
    from occlusion_synth.errors import UserError
    from occlusion_synth.shards import list_shards
    from occlusion_synth.verify import verify_dataset

    if not storage.isdir(root):
        empty = " (or holds nothing)" if storage.is_remote(root) else ""
        raise UserError(f"{root} is not a folder{empty}")
    with tqdm(
        total=len(list_shards(root)), desc="verify", unit="shard", leave=False, disable=None
    ) as bar:
        report = verify_dataset(root, workers=workers or os.cpu_count() or 1, progress=bar.update)
    for problem in report.problems:
        click.echo(problem)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
