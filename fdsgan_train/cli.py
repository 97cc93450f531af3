"""``fdsgan-train``: train FD-StackGAN on occsynth shards (also under ``torchrun``)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from occlusion_synth.cli_support import CliError, Command
from occlusion_synth.commands.location import LOCATION
from occlusion_synth.errors import UserError

EPILOG = """\b
Exit codes: 0 done; 2 a problem with the input (options, config, data, checkpoint);
3 training diverged (a NaN or infinite loss or weights; the last good checkpoint is kept).
"""


@click.command(cls=Command, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data",
    "data_dir",
    type=LOCATION,
    help="Dataset folder written by `occsynth build` (holds shards/), or its URL "
    "(s3://bucket/x: shards are streamed; see --data-cache).",
)
@click.option(
    "--data-cache",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FDSGAN_DATA_CACHE",
    default=None,
    help="With --data at a URL: download each shard once into this folder and read it "
    "from there (default: stream every pass).  [env: FDSGAN_DATA_CACHE]",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    help="Output folder: config.yaml, checkpoints/, metrics.jsonl, tb/, samples/.",
)
@click.option(
    "--config",
    "config_spec",
    default=None,
    help="Preset name (paper, fast, tiny, segmenter) or a YAML file (may say `base: tiny`). "
    "Default: paper.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any config value, e.g. --set optim.lr_g=2e-4 (repeatable).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="auto picks CUDA when present.  [config: train.device]",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Epochs to train.  [train.epochs]"
)
@click.option(
    "--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many steps."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Per-rank batch.  [data.batch_size]",
)
@click.option(
    "--workers", type=click.IntRange(min=0), default=None, help="Data-loading worker processes."
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue run-dir's last checkpoint exactly (its config; flags still apply).",
)
@click.option(
    "--vgg-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="torchvision VGG-19 ImageNet weights file (default: torchvision's cache).",
)
@click.option(
    "--vgg-random-weights",
    is_flag=True,
    help="Random VGG-19 weights: for tests and smoke runs only, never real training.",
)
@click.option(
    "--compile/--no-compile", "compile_", default=None, help="torch.compile the networks."
)
@click.option(
    "--amp/--no-amp",
    default=None,
    help="Mixed precision (bf16, else fp16 + grad scaler). Default: on CUDA only.",
)
@click.option(
    "--describe",
    is_flag=True,
    help="Print the four networks' layers and parameter counts, then exit.",
)
def train_main(
    data_dir,
    data_cache,
    run_dir,
    config_spec,
    sets,
    device,
    epochs,
    max_steps,
    batch_size,
    workers,
    resume,
    vgg_weights,
    vgg_random_weights,
    compile_,
    amp,
    describe,
):
    """Train the two-stage FD-StackGAN de-occlusion model (Base-Net G1/D1, Refine-Net G2/D2).

    \b
    Examples:
      fdsgan-train --data demo_out --run-dir runs/tiny --config tiny --vgg-random-weights
      fdsgan-train --data data/ --run-dir runs/paper --config paper
      torchrun --nproc_per_node=8 -m fdsgan_train.cli --data data/ --run-dir runs/p8
      fdsgan-train --describe --config paper
    """
    from fdsgan_train.requirements import require_torch

    require_torch("fdsgan-train", ("torch", "torchvision", "tensorboard"))
    if data_cache is not None:  # read by fdsgan_train.data (and by DataLoader workers)
        os.environ["FDSGAN_DATA_CACHE"] = str(data_cache)
    from fdsgan_train.config import load_config, parse_set

    overrides = dict(parse_set(s) for s in sets)
    flags = {
        "train.device": device,
        "train.epochs": epochs,
        "train.max_steps": max_steps,
        "data.batch_size": batch_size,
        "data.num_workers": workers,
        "train.compile": compile_,
        "train.amp": amp,
        "loss.perceptual.weights": str(vgg_weights) if vgg_weights else None,
        "loss.perceptual.random_weights": True if vgg_random_weights else None,
    }
    overrides |= {k: v for k, v in flags.items() if v is not None}

    if resume and config_spec is not None:
        raise UserError("--resume continues with the run's own config.yaml: drop --config")
    config_spec = config_spec or "paper"
    if describe:
        from fdsgan_train.models import describe as describe_models

        cfg = load_config(config_spec, overrides)
        if cfg["model"]["kind"] == "segmenter":
            from fdsgan_train.segmenter import build_segmenter, count_parameters

            net = build_segmenter(cfg)
            click.echo(f"{net}\nsegmenter: {count_parameters(net):,} parameters")
            return
        click.echo(describe_models(cfg))
        return
    if data_dir is None or run_dir is None:
        raise UserError("--data and --run-dir are required (or use --describe)")
    if resume:
        saved = run_dir / "config.yaml"
        if not saved.is_file():
            raise UserError(f"--resume: {saved} not found")
        config_spec = str(saved)
    cfg = load_config(config_spec, overrides)

    from fdsgan_train.train import TrainingDiverged, train

    try:
        result = train(cfg, data_dir, run_dir, resume=resume)
    except TrainingDiverged as exc:
        raise CliError(str(exc), exc.exit_code) from None
    if result.checkpoint is None:  # ranks other than 0 under torchrun say nothing
        return
    scores = result.scores
    if scores and "iou" in scores:  # model.kind segmenter
        click.echo(f"done: validation IoU {scores['iou']:.4f}")
    elif scores:
        click.echo(
            f"done: validation PSNR {scores['psnr_composite']:.2f} dB composite vs "
            f"{scores['psnr_input']:.2f} dB input"
        )
    if result.trained_steps:
        click.echo(f"saved {result.checkpoint} (step {result.step})")


if __name__ == "__main__":  # torchrun -m fdsgan_train.cli ...
    train_main()
