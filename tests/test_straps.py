"""Ear loops drawn for worn masks cut from photos without theirs (``straps``)."""

from __future__ import annotations

import numpy as np

from occlusion_synth.canonical import CANONICAL_SIZE, MEAN_SHAPE, Landmarks
from occlusion_synth.layers import Layer
from occlusion_synth.straps import CORD_IOD, EAR_DEPTH, EAR_HALF_WIDTH, add_ear_loops

S = CANONICAL_SIZE


def _mask_layer(half_width: float = 40.0) -> tuple[Layer, Landmarks]:
    """A grey block over the mean face's lower half, ``half_width`` px either side."""
    lm = Landmarks(dict(MEAN_SHAPE), provider="mean")
    alpha = np.zeros((S, S), np.float32)
    cx = int(round(lm["nose_tip"][0]))
    alpha[140:215, int(cx - half_width) : int(cx + half_width)] = 1.0
    rgb = np.zeros((S, S, 3), np.float32)
    rgb[alpha > 0] = (0.3, 0.3, 0.32)
    return Layer(rgb=rgb, alpha=alpha, name="m", category="cloth_mask"), lm


def _ear(lm: Landmarks, side: float, k: int) -> np.ndarray:
    mid = (lm["left_eye"] + lm["right_eye"]) / 2
    return mid + np.array([side * EAR_HALF_WIDTH, EAR_DEPTH[k]]) * lm.inter_ocular


def test_loops_run_from_the_mask_to_both_ears_under_the_fabric() -> None:
    layer, lm = _mask_layer()
    before = layer.alpha.copy()
    add_ear_loops(layer, lm)
    assert layer.params["ear_loops"]["sides"] == ["left", "right"]
    assert np.array_equal(layer.alpha[before > 0], before[before > 0])  # the fabric is kept
    added = (layer.alpha > 0.3) & (before == 0)
    width = CORD_IOD * lm.inter_ocular
    assert 50 * width < added.sum() < 400 * width  # cords, not patches
    for side in (-1.0, 1.0):
        for k in (0, 1):  # each strand reaches near its ear point (it fades behind the ear)
            ex, ey = _ear(lm, side, k)
            ys, xs = np.nonzero(added)
            assert np.hypot(xs - ex, ys - ey).min() < 0.25 * lm.inter_ocular, (side, k)
    cord = layer.rgb[added].mean(axis=0)
    assert np.all(cord > 0.3) and np.all(cord < 0.6)  # the mask's colour, a little lighter


def test_the_far_side_is_hidden_behind_the_head() -> None:
    layer, lm = _mask_layer()
    keep = np.ones((S, S), np.float32)
    keep[:, 128:] = 0.0  # the head hides the image-right side
    before = layer.alpha.copy()
    add_ear_loops(layer, lm, keep)
    added = (layer.alpha > 0) & (before == 0)
    assert added[:, :128].any() and not added[:, 128:].any()
