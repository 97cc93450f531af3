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


class AliasedOption(click.Option):
    """An option whose first spelling is shown in ``--help``; later ones are hidden aliases
    (old spellings kept working)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


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


def provider_option(*decls: str, help: str, **attrs: Any) -> Decorator:
    """A choice of landmark provider (see ``occlusion_synth.landmarks``), ``auto`` by default."""
    return click.option(
        *decls, type=click.Choice(PROVIDERS), default="auto", show_default=True, help=help, **attrs
    )


def landmark_options(f: F) -> F:
    """The landmark options every command that reads faces shares, in one vocabulary:
    ``--landmarks``, ``--face-landmarker-task``, ``--landmark-cache``, ``--no-landmark-cache``
    (``--provider``, ``--cache-file`` and ``--no-cache`` are hidden old spellings)."""
    decorators = [
        provider_option(
            "--landmarks",
            "--provider",
            "landmarks",
            cls=AliasedOption,
            help="Landmark provider: celeba (CelebA's annotation file only), mediapipe "
            "(detect), or auto (the annotation where a file has one, else detect).",
        ),
        file_option(
            "--face-landmarker-task",
            default=None,
            help="Detect with MediaPipe's Tasks FaceLandmarker and this face_landmarker.task "
            "model file instead of the Face Mesh bundled in mediapipe 0.10.21.",
        ),
        file_option(
            "--landmark-cache",
            "--cache-file",
            "landmark_cache",
            cls=AliasedOption,
            help="Landmark cache file [default: $OCCSYNTH_LANDMARK_CACHE, else "
            "$XDG_CACHE_HOME/occsynth/landmarks.parquet]. A second run does not detect again.",
        ),
        click.option(
            "--no-landmark-cache",
            "--no-cache",
            "no_landmark_cache",
            cls=AliasedOption,
            is_flag=True,
            help="Detect every face again, without reading or writing the cache.",
        ),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def cache_spec(landmark_cache: Path | None, no_landmark_cache: bool) -> str | None:
    """The cache named by the landmark options: a path, ``"default"``, or None for none."""
    from occlusion_synth.errors import UserError

    if landmark_cache is not None and no_landmark_cache:
        raise UserError("--landmark-cache and --no-landmark-cache exclude each other")
    return None if no_landmark_cache else str(landmark_cache or "default")


max_outside_option = click.option(
    "--max-outside",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Reject a face (rejects.csv) when more than this fraction of its 256x256 frame lies "
    "outside the photo, as with photos cropped tightly around the face; the outside is "
    "filled from the photo's edge, which a model should not learn from.",
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
