"""The segmenter's flip test-time augmentation, and finding a face in square windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fdsgan_train import infer
from fdsgan_train.config import load_config
from fdsgan_train.segmenter import Segmenter, SegmenterNet


def _segmenter(flip: bool) -> Segmenter:
    torch.manual_seed(0)
    cfg = load_config("segmenter", {"segment.size": 64})
    net = SegmenterNet("unet", 8)
    with torch.no_grad():  # a random net is not mirror-symmetric: make that show
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return Segmenter(net, cfg, "cpu", flip=flip)


def test_flip_tta_makes_the_prediction_mirror_symmetric():
    frame = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    mirrored = np.ascontiguousarray(frame[:, ::-1])
    with_tta = _segmenter(flip=True)
    a, b = with_tta.probabilities([frame, mirrored])
    np.testing.assert_allclose(a, b[:, ::-1], atol=1e-5)
    without = _segmenter(flip=False)
    a, b = without.probabilities([frame, mirrored])
    assert np.abs(a - b[:, ::-1]).max() > 1e-3


def test_square_windows_cover_the_longer_side_with_overlap():
    assert infer.square_windows(100, 100) == []
    wide = infer.square_windows(800, 1420)
    assert [w[2] for w in wide] == [800] * len(wide) and all(w[1] == 0 for w in wide)
    assert wide[0][0] == 0 and wide[-1][0] == 1420 - 800
    steps = np.diff([w[0] for w in wide])
    assert len(wide) >= 3 and steps.max() <= 800 * (1 - infer.WINDOW_OVERLAP)
    tall = infer.square_windows(300, 100)
    assert all(w[0] == 0 and w[2] == 100 for w in tall) and tall[-1][1] == 200


class _Found:
    def __init__(self, five: np.ndarray) -> None:
        self._five = five

    def five(self) -> np.ndarray:
        return self._five


def test_find_five_searches_square_windows_and_maps_points_back(monkeypatch):
    """A detector that only finds a face in a square image (as Face Mesh misses a face in a
    wide scene): the window's points come back in the photo's pixels, the widest face wins."""
    from occlusion_synth import landmarks

    photo = np.zeros((100, 300, 3), np.uint8)
    photo[40, 230] = 255  # the "face", in the last window only (x 200..300)
    photo[40, 20] = 128  # a smaller "face" in the first window

    def detect(rgb, detector):
        h, w = rgb.shape[:2]
        if h != w:
            return None
        ys, xs = np.nonzero(rgb[..., 0])
        if not len(xs):
            return None
        x, y = int(xs[0]), int(ys[0])
        gap = 30 if rgb[y, x, 0] == 255 else 10
        five = [[x, y], [x + gap, y], [x, y + 10], [x, y + 20], [x + 5, y + 20]]
        return _Found(np.array(five, dtype=np.float64))

    monkeypatch.setattr(landmarks, "detect_points", detect)
    monkeypatch.setattr(landmarks, "get_detector", lambda: None)
    five = infer.find_five(photo)
    np.testing.assert_allclose(five[:2], [[230, 40], [260, 40]])
    monkeypatch.setattr(landmarks, "detect_points", lambda rgb, d: None)
    with pytest.raises(infer.UserError, match="no face found"):
        infer.find_five(photo)
