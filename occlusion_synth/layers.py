"""The hand-over between placement and compositing: one occluder rendered into the frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Layer:
    """An occluder warped into the canonical frame, ready to blend onto a face.

    ``rgb`` is straight (not premultiplied) colour in [0, 1]; ``alpha`` is anti-aliased
    coverage in [0, 1]; ``contact`` marks where the object rests on the skin (used for the
    contact shadow), ``gloss`` how shiny it is (0 matte .. 1 glossy plastic or metal).
    ``lit``: the colour already carries a photo's light (a harvested occluder, harmonised to
    the face): the compositor matches only the local shading, with no global gain, colour
    cast or form shading on top. ``surface``: for a drawn face-worn occluder, ``(x0, y0, u,
    v)``: over its box from (x0, y0), the canonical template point (u, v) each pixel shows,
    so per-sample folds and creases (``drape``) follow the warped fabric; else None.
    ``transform``: for a held object, the 2x3 map from its asset pixels to the frame (where
    ``grip`` puts the hand that holds it); else None. ``standoff``: how far (frame pixels)
    the object is held in front of the skin, 0 for one worn on it: its silhouette's shadow
    falls that much further from it, softer and darker, and it takes little of the face's
    local shading (a hand over the face: ``compose.STANDOFF_*``).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    name: str
    category: str
    contact: np.ndarray | None = None
    gloss: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    lit: bool = False
    surface: tuple[int, int, np.ndarray, np.ndarray] | None = None
    transform: np.ndarray | None = None
    standoff: float = 0.0
