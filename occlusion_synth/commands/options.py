"""Click options shared by several ``occsynth`` commands, each defined once.

Kept free of heavy imports so that ``occsynth <command> --help`` stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]

#: the landmark providers, as ``occlusion_synth.landmarks.PROVIDERS`` (not imported: numpy)
PROVIDERS: tuple[str, ...] = ("auto", "celeba", "mediapipe")


def file_option(*decls: str, **attrs: Any) -> Decorator:
    """An option naming a file (not a folder), given to the command as a ``Path``."""
    return click.option(*decls, type=click.Path(dir_okay=False, path_type=Path), **attrs)


def out_file_option(help: str) -> Decorator:
    """The required ``--out FILE`` of a command that writes one file."""
    return file_option("--out", required=True, help=help)


def faces_option(*, required: bool) -> Decorator:
    """``--faces PATH|demo``: the faces to occlude."""
    return click.option(
        "--faces",
        required=required,
        metavar="PATH|demo",
        help="Faces to occlude: a CelebA root, a folder of photos, one photo, or `demo`.",
    )


def provider_option(*decls: str, help: str) -> Decorator:
    """A choice of landmark provider (see ``occlusion_synth.landmarks``), ``auto`` by default."""
    return click.option(
        *decls, type=click.Choice(PROVIDERS), default="auto", show_default=True, help=help
    )


def landmarks_option(dest: str = "landmarks") -> Decorator:
    """``--landmarks``: the landmark provider of a command that makes samples from faces."""
    return provider_option(
        "--landmarks",
        dest,
        help="Landmark provider: CelebA annotations, MediaPipe, or annotations where present.",
    )


seed_option = click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")

categories_option = click.option(
    "--categories",
    metavar="CAT[:W],...",
    help="Occluder categories and weights, e.g. `sunglasses:2,hand` (default: all, equally).",
)

max_occluders_option = click.option(
    "--max-occluders",
    default=1,
    show_default=True,
    type=click.IntRange(1, 8),
    help="Each sample gets 1..K occluders (compatible ones only).",
)

occluders_dir_option = click.option(
    "--occluders-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of your own occluders (PNG + JSON sidecars), added to the bundled ones.",
)
