"""``occsynth stats``: one figure describing a built dataset."""

from __future__ import annotations

from pathlib import Path

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.location import LOCATION
from occlusion_synth.commands.options import out_file_option
from occlusion_synth.storage import Location


@click.command("stats", cls=Command)
@click.argument("root", metavar="DIR|URL", type=LOCATION)
@out_file_option("Where to write the figure (PNG).")
@click.option(
    "--max-masks",
    type=click.IntRange(1),
    help="Average at most this many masks for the heat map (default: all).",
)
def stats(root: Location, out: Path, max_masks: int | None) -> None:
    """Plot category counts, the coverage histogram, where masks fall and split sizes.

    DIR|URL is a dataset folder or a URL (s3://bucket/x; its shards are streamed)."""
    from occlusion_synth import storage
    from occlusion_synth.errors import UserError
    from occlusion_synth.shards import MANIFEST, ShardError
    from occlusion_synth.stats import draw_stats

    if not storage.exists(storage.join(root, MANIFEST)):
        raise UserError(f"{root} holds no built dataset (no {MANIFEST})")
    try:
        draw_stats(root, out, max_masks=max_masks)
    except (ShardError, FileNotFoundError) as exc:
        raise UserError(f"{root}: {exc} (run `occsynth verify {root}`)") from None
    click.echo(f"wrote {out}")
