"""``occsynth screen``: find the faces whose photo already shows an occluder.

Each face is aligned to the 256x256 frame as a build aligns it, and an occlusion segmenter
(``fdsgan-train --config segmenter``) marks what it takes for an occluder. A face is
*flagged* when the marked share of the frame's photo pixels (the part of the frame beyond
the photo's edge is filled, not photographed, and is not counted) is above ``threshold``.
The CSV lists every face (``source``, ``split``, ``occluded``, ``flagged``, ``reason``);
``occsynth build --exclude`` leaves the flagged ones out (``occlusion_synth.exclude``).
The sheet shows the flagged faces, most occluded first, with the marked region outlined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occlusion_synth.exclude import FLAGGED, REASON, SOURCE

#: Faces segmented per forward pass.
BATCH = 16
#: Most faces drawn on the sheet.
SHEET_MAX = 48


@dataclass
class ScreenResult:
    """What a screening found: one row per aligned face, the faces that could not be aligned
    (``(id, reason)``), and the sheet's tiles (the :data:`SHEET_MAX` most occluded flagged
    faces, most occluded first)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    tiles: list[tuple] = field(default_factory=list)

    @property
    def flagged(self) -> int:
        return sum(bool(r[FLAGGED]) for r in self.rows)


def screen_faces(
    sources: list[Any],
    align: Callable[[Any], Any],
    segmenter: Any,
    threshold: float,
    progress: Callable[[int], None] | None = None,
) -> ScreenResult:
    """Screen ``sources`` (``FaceSource``): ``align(src)`` gives its ``AlignedFace`` (or
    raises ``Reject``), ``segmenter`` (a ``segmenter.Segmenter``) marks the occluders;
    ``progress(n)`` is told of every ``n`` faces done."""
    from occlusion_synth.imageio import Reject

    from .segment_eval import frame_valid

    result = ScreenResult()
    pending: list[tuple[Any, np.ndarray]] = []

    def flush() -> None:
        preds = segmenter.masks([face.image for face, _ in pending])
        for (face, valid), pred in zip(pending, preds, strict=True):
            marked = (np.asarray(pred) > 0) & valid
            share = float(marked.sum()) / max(int(valid.sum()), 1)
            flagged = share > threshold
            why = f"already occluded: {100 * share:.1f} % of the photo marked by the segmenter"
            result.rows.append(
                {
                    SOURCE: face.source.id,
                    "split": face.source.split,
                    "occluded": round(share, 5),
                    FLAGGED: flagged,
                    REASON: why if flagged else "",
                }
            )
            if flagged:
                label = f"{face.source.id}  {100 * share:.1f} %"
                result.tiles.append((share, label, face.image, marked, valid))
        pending.clear()
        # only the sheet's faces are kept: a screening of all CelebA flags thousands
        result.tiles.sort(key=lambda t: -t[0])
        del result.tiles[SHEET_MAX:]

    for src in sources:
        try:
            face = align(src)
        except Reject as exc:
            result.rejects.append((src.id, exc.reason))
        else:
            w, h = face.photo_size
            pending.append((face, frame_valid(face.matrix, (h, w))))
            if len(pending) == BATCH:
                flush()
        if progress is not None:
            progress(1)
    if pending:
        flush()
    return result


def write_sheet(result: ScreenResult, path: Path) -> Path | None:
    """The flagged faces (at most :data:`SHEET_MAX`, most occluded first), the marked region
    outlined in red; None when no face is flagged."""
    from .segment_eval import outline_sheet

    if not result.tiles:
        return None
    tiles = [
        (label, image, np.zeros_like(marked), marked, valid)
        for _, label, image, marked, valid in result.tiles
    ]
    return outline_sheet(tiles, path, tile=192, columns=6)
