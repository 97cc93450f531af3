"""The fast paths of the per-face statistics and of the JSON conversion give the values of
the plain NumPy formulations they replace (a percentile, a median, a least-squares fit)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from occlusion_synth.realism import (
    _SHADING_GRID,
    _grid,
    _median_lab,
    luminance,
    noise_sigma,
)
from occlusion_synth.shards import jsonable


def _noise_reference(gray: np.ndarray) -> float:
    """``noise_sigma`` as first written: keep the responses at or below the 90th percentile."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = cv2.filter2D(gray.astype(np.float32), cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
    resp = np.abs(resp[1:-1, 1:-1])
    kept = resp[resp <= np.percentile(resp, 90)]
    return float(np.sqrt(np.pi / 2.0) * kept.mean() / (6.0 * 0.8237))


@pytest.mark.parametrize("seed", range(4))
def test_noise_sigma_matches_the_percentile_formulation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gray = rng.normal(120, 1 + 4 * seed, (37 + seed, 53)).astype(np.float32)
    if seed % 2:  # whole grey levels: many ties at the cut
        gray = np.rint(gray)
    assert noise_sigma(gray) == pytest.approx(_noise_reference(gray), rel=1e-5)


@pytest.mark.parametrize("n", [1, 2, 30, 31, 500])
def test_median_lab_matches_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    lab = rng.integers(0, 256, (23, 29, 3), dtype=np.uint8)
    where = np.zeros((23, 29), bool)
    where.flat[rng.choice(where.size, min(n, where.size), replace=False)] = True
    want = np.median(lab[where].astype(np.float32), axis=0)
    got = _median_lab(lab, where)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_light_fit_is_the_weighted_least_squares_plane() -> None:
    wgt, wsum, sel, fit = _grid()
    assert wsum == pytest.approx(float(wgt.sum()))
    yy, xx = np.mgrid[0:_SHADING_GRID, 0:_SHADING_GRID].astype(np.float64)
    values = (7.0 + 0.3 * xx - 1.2 * yy + np.sin(xx * yy))[sel]
    design = np.stack([np.ones(int(sel.sum())), xx[sel], yy[sel]], axis=1)
    ws = np.sqrt(wgt[sel])
    want, *_ = np.linalg.lstsq(design * ws[:, None], values * ws, rcond=None)
    assert np.allclose(fit @ values, want, atol=1e-9)


def test_luminance_is_the_rec601_weighted_sum() -> None:
    img = np.random.default_rng(0).uniform(0, 255, (9, 11, 3)).astype(np.float32)
    want = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    assert np.allclose(luminance(img), want, atol=1e-3)
    assert np.allclose(luminance(img.astype(np.uint8)), luminance(img.astype(np.uint8) * 1.0))


class _Dict(dict):
    pass


def test_jsonable_fast_path_keeps_every_conversion() -> None:
    obj = {
        "a": (1, 2.5, np.float32(0.25), np.int64(3), True, None),
        1: [float("nan"), math.inf, np.float64("nan"), "s"],
        "arr": np.arange(3, dtype=np.int16),
        "set": {3, 1},
        "sub": _Dict(x=np.bool_(True)),
    }
    assert jsonable(obj) == {
        "a": [1, 2.5, 0.25, 3, True, None],
        "1": [None, None, None, "s"],
        "arr": [0, 1, 2],
        "set": [1, 3],
        "sub": {"x": True},
    }
    assert type(jsonable(obj)["a"][3]) is int
