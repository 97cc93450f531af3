"""Shared test fixtures. Tests that need ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner, Result

if TYPE_CHECKING:
    from occlusion_synth.build import BuildOptions

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_caches(tmp_path_factory) -> None:
    """Keep the suite out of the user's caches (landmarks, generated occluders, torch hub)."""
    home = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(home)
    os.environ.pop("OCCSYNTH_LANDMARK_CACHE", None)
    os.environ["TORCH_HOME"] = str(home / "torch")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository; skips the test when it is not there."""
    if not (SHARED_DATA / "celeba_small").is_dir():
        pytest.skip("../shared/data is not present (development photos are optional)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised (seed 0) ``tiny`` FD-StackGAN checkpoint in the trainer's format."""
    import torch

    from fdsgan_train.checkpoint import save_checkpoint
    from fdsgan_train.config import load_config
    from fdsgan_train.models import build_models

    cfg = load_config("tiny")
    torch.manual_seed(0)
    nets = build_models(cfg)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.pt"
    save_checkpoint(path, {"config": cfg, "models": {k: n.state_dict() for k, n in nets.items()}})
    return path


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., Result]:
    """``run_cli(command, *args, batch_size=2, out=path)``: invoke a click command.

    Keyword arguments become options (``batch_size`` -> ``--batch-size``), values are
    passed as strings after the positional ``args``.
    """

    def run(command: click.Command, *args: str, **options: object) -> Result:
        argv = list(args)
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        return CliRunner().invoke(command, argv)

    return run


@pytest.fixture(scope="session")
def demo_build_options() -> Callable[..., BuildOptions]:
    """``demo_build_options(out, cache, **kw)``: small, single-process build options."""

    from occlusion_synth.build import BuildOptions

    def options(out: Path, cache: Path, **kw: object) -> BuildOptions:
        base: dict[str, object] = dict(
            faces="demo", out=out, workers=1, shard_size=4, landmark_cache=str(cache)
        )
        base.update(kw)
        return BuildOptions(**base)

    return options


@pytest.fixture(scope="session")
def dataset_hashes() -> Callable[[Path], dict[str, str]]:
    """``dataset_hashes(root)``: sha256 of every shard and of the manifest of a local build."""

    def hashes(root: Path) -> dict[str, str]:
        files = sorted((root / "shards").glob("*.tar")) + [root / "manifest.parquet"]
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    return hashes
