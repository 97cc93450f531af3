"""Console scripts ``fdsgan-eval`` (``eval_main``) and ``fdsgan-infer`` (``infer_main``)."""

from __future__ import annotations

from pathlib import Path

import click

_DEVICE = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(path_type=Path),
    help="Checkpoint written by fdsgan-train (G1 and G2 are used).",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Dataset built by 'occsynth build' (folder holding shards/).",
)
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="Split of the dataset to score (train, val or test).",
)
@click.option(
    "--real",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of real occluded photos for NIQE/BRISQUE. NAME.jpg is paired with "
    "NAME.mask.png: with a mask the face is aligned and every method is scored; "
    "without one the photo is scored as it is (input row only).",
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
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder: metrics.csv, summary.md, comparison.png.",
)
def eval_main(
    checkpoint: Path,
    data: Path,
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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(path_type=Path),
    help="Checkpoint written by fdsgan-train.",
)
@click.option(
    "--image",
    required=True,
    type=click.Path(path_type=Path),
    help="A photo of any size, or a folder of photos.",
)
@click.option(
    "--mask",
    required=True,
    type=click.Path(path_type=Path),
    help="PNG the size of the photo, non-zero (or opaque) where occluded; or a folder "
    "of masks paired with the photos by name (NAME.png or NAME.mask.png).",
)
@_DEVICE
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output PNG (single photo) or folder (NAME.png per photo).",
)
def infer_main(checkpoint: Path, image: Path, mask: Path, device: str, out: Path) -> None:
    """De-occlude your own photos: the face is found and aligned to the model's 256x256 frame,
    G1 and G2 fill the masked region, and the result is warped back into the original photo.
    Only pixels inside the mask change."""
    from .infer import infer

    for p in infer(checkpoint, image, mask, out, device=device):
        click.echo(f"wrote {p}")
