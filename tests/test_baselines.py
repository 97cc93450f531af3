"""Baseline methods: classical inpainting, compositing of the model stages."""

from __future__ import annotations

import numpy as np
import pytest

from fdsgan_train import baselines as B


def _face_like(shape=(64, 64)):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    img = np.stack([100 + xx, 80 + yy, np.full(shape, 120)], axis=2)
    return img.astype(np.uint8)


def _mask(shape=(64, 64)):
    m = np.zeros(shape, np.uint8)
    m[20:40, 24:44] = 255
    return m


def test_registry_has_every_method():
    assert list(B.METHODS) == [
        "input",
        "telea",
        "navier_stokes",
        "stage1",
        "stage2",
        "stage1_raw",
        "stage2_raw",
    ]
    assert [n for n, m in B.METHODS.items() if m.needs_model] == [
        "stage1",
        "stage2",
        "stage1_raw",
        "stage2_raw",
    ]


@pytest.mark.parametrize("name", ["telea", "navier_stokes"])
def test_inpainting_changes_only_the_mask_and_fills_it_smoothly(name):
    clean = _face_like()
    mask = _mask()
    occluded = clean.copy()
    occluded[mask > 0] = (0, 0, 0)
    out = B.METHODS[name].fn(occluded, mask, None)
    assert out.shape == clean.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], occluded[mask == 0])
    err = np.abs(out.astype(int) - clean.astype(int))[mask > 0]
    assert err.mean() < 15  # a smooth gradient is filled close to the truth, not left black
    assert np.abs(occluded.astype(int) - clean.astype(int))[mask > 0].mean() > 80


def test_input_is_returned_unchanged_as_a_copy():
    img = _face_like()
    out = B.METHODS["input"].fn(img, _mask(), None)
    assert np.array_equal(out, img) and out is not img


def test_model_methods_composite_or_pass_raw_output():
    img = _face_like()
    mask = _mask()
    rng = np.random.default_rng(0)
    preds = B.StagePredictions(
        stage1=rng.integers(0, 256, img.shape, dtype=np.uint8),
        stage2=rng.integers(0, 256, img.shape, dtype=np.uint8),
    )
    for name, pred in (("stage1", preds.stage1), ("stage2", preds.stage2)):
        out = B.METHODS[name].fn(img, mask, preds)
        assert np.array_equal(out[mask == 0], img[mask == 0])
        assert np.array_equal(out[mask > 0], pred[mask > 0])
        raw = B.METHODS[name + "_raw"].fn(img, mask, preds)
        assert np.array_equal(raw, pred)
    with pytest.raises(ValueError):
        B.METHODS["stage2"].fn(img, mask, None)


def test_binary_mask_accepts_any_nonzero_and_three_channels():
    m = np.zeros((4, 4, 3), np.uint8)
    m[1, 2, 1] = 7
    out = B.binary_mask(m)
    assert out.shape == (4, 4) and out[1, 2] == 255 and out.sum() == 255
