"""``occsynth verify``: check every shard and sample of a built dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from occlusion_synth.cli_support import Command


@click.command("verify", cls=Command)
@click.argument("root", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(0),
    help="Processes reading shards (default: all cores).",
)
def verify(root: Path, workers: int) -> None:
    """Check a dataset built by `occsynth build`.

    Reads every shard safely (no extraction; links, absolute paths and `..` refused) and
    checks every sample: four members, PNGs that decode, 256x256 sizes and modes, a mask of
    only 0 and 255, input equal to target outside the mask, metadata consistent with the
    manifest, unique keys, counts against dataset.json and no leftover partial files.
    Prints a summary; exits with status 1 listing every problem when there is one.
    """
    from tqdm import tqdm

    from occlusion_synth.errors import UserError
    from occlusion_synth.shards import list_shards
    from occlusion_synth.verify import verify_dataset

    if not root.is_dir():
        raise UserError(f"{root} is not a folder")
    with tqdm(
        total=len(list_shards(root)), desc="verify", unit="shard", leave=False, disable=None
    ) as bar:
        report = verify_dataset(root, workers=workers or os.cpu_count() or 1, progress=bar.update)
    for problem in report.problems:
        click.echo(problem)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
