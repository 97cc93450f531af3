"""Console scripts ``fdsgan-eval`` (``eval_main``) and ``fdsgan-infer`` (``infer_main``)."""

from __future__ import annotations

from pathlib import Path

import click

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.location import LOCATION

from .requirements import require_torch


def _path_option(*decls: str, help: str, **attrs):
    """An option naming a file or folder, given to the command as a ``Path``."""
    return click.option(*decls, type=click.Path(path_type=Path), help=help, **attrs)


def _required_path(name: str, help: str):
    """A required ``Path`` option."""
    return _path_option(name, required=True, help=help)


_DEVICE = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
)


@click.command(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@_required_path(
    "--checkpoint",
    "Checkpoint written by fdsgan-train: G1 and G2 are scored; or a segmenter checkpoint "
    "(--config segmenter): IoU, F1 and boundary F of its masks.",
)
@click.option(
    "--data",
    required=True,
    type=LOCATION,
    help="Dataset built by 'occsynth build' (folder holding shards/), or its URL "
    "(s3://bucket/x; shards are streamed, or cached in $FDSGAN_DATA_CACHE when set).",
)
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="Split of the dataset to score (train, val or test).",
)
@_path_option(
    "--real",
    default=None,
    help="Folder of real occluded photos for NIQE/BRISQUE. NAME.jpg is paired with "
    "NAME.mask.png: with a mask the face is aligned and every method is scored; "
    "without one the photo is scored as it is (input row only). For a segmenter: its "
    "masks vs NAME.mask.png (beside the photo or in DIR/masks/) in the aligned frame, "
    "and real_sheet.png with the true (green) and predicted (red) outlines.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Score only the first N samples of the split.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Samples per generator forward pass.",
)
@_DEVICE
@_required_path("--out", "Output folder: metrics.csv, summary.md, comparison.png.")
def eval_main(
    checkpoint: Path,
    data: Path | str,
    split: str,
    real: Path | None,
    limit: int | None,
    batch_size: int,
    device: str,
    out: Path,
) -> None:
    """Score FD-StackGAN and the baselines (input, OpenCV Telea / Navier-Stokes, Stage I,
    Stages I+II) on a synthetic split with SSIM, PSNR and MSE (whole image and mask only),
    and on real photos with NIQE and BRISQUE. Writes a Table-1-shaped summary.md, the
    per-sample metrics.csv and a comparison.png. Metric definitions: docs/metrics.md."""
    require_torch("fdsgan-eval", ("torch",))
    from .checkpoint import checkpoint_kind, load_checkpoint

    if checkpoint_kind(load_checkpoint(checkpoint, kind=None, mmap=True)) == "segmenter":
        from .segment_eval import evaluate_segmenter

        scored = evaluate_segmenter(checkpoint, data, out, split, real, limit, device, batch_size)
        for p in scored.values():
            click.echo(f"wrote {p}")
        return
    from .evaluate import evaluate

    paths = evaluate(
        checkpoint,
        data,
        out,
        split=split,
        real=real,
        limit=limit,
        device=device,
        batch_size=batch_size,
    )
    for p in paths.values():
        click.echo(f"wrote {p}")


@click.command(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@_required_path("--checkpoint", "Checkpoint written by fdsgan-train.")
@_required_path("--image", "A photo of any size, or a folder of photos.")
@_path_option(
    "--mask",
    default=None,
    help="PNG the size of the photo, non-zero (or opaque) where occluded; or a folder "
    "of masks paired with the photos by name (NAME.mask.png, or NAME.png in a folder of "
    "masks only). The photos' own folder works too (NAME.jpg beside NAME.mask.png). "
    "Without it, --segmenter predicts the mask.",
)
@_path_option(
    "--segmenter",
    default=None,
    help="Segmenter checkpoint (fdsgan-train --config segmenter): predicts each photo's mask "
    "when --mask is not given, and writes it beside the output as NAME.mask.png (check or "
    "edit it, then rerun with --mask).",
)
@click.option(
    "--mask-dilate",
    type=click.IntRange(min=0, max=256),
    default=0,
    show_default=True,
    metavar="PX",
    help="Grow the predicted mask by PX photo pixels (a loose mask hides edge remnants; a "
    "segmenter trained on segment.target object finds the occluder itself, and its shadow "
    "and soft rim lie just outside: 2-4 px lets the de-occluder repaint them).",
)
@_DEVICE
@_required_path("--out", "Output PNG (single photo) or folder (NAME.png per photo).")
def infer_main(
    checkpoint: Path,
    image: Path,
    mask: Path | None,
    segmenter: Path | None,
    mask_dilate: int,
    device: str,
    out: Path,
) -> None:
    """De-occlude your own photos: the face is found and aligned to the model's 256x256 frame,
    G1 and G2 fill the masked region, and the result is warped back into the original photo.
    Only pixels inside the mask change; without --mask, --segmenter predicts it.

    \b
    Examples:
      fdsgan-infer --checkpoint G.pt --image photo.jpg --mask photo.mask.png --out out.png
      fdsgan-infer --checkpoint G.pt --segmenter S.pt --image photo.jpg --out out.png
    """
    require_torch("fdsgan-infer", ("torch",))
    from .infer import infer

    for p in infer(checkpoint, image, mask, out, device, segmenter, mask_dilate):
        click.echo(f"wrote {p}")
