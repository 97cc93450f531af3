"""Metrics agree with scikit-image and behave as documented (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from fdsgan_train import metrics as M


def _sk_ssim(a, b, full=False):
    return structural_similarity(
        a,
        b,
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        full=full,
    )


def _noisy(a, rng, amp):
    return np.clip(a.astype(int) + rng.integers(-amp, amp + 1, a.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape,amp", [((256, 256, 3), 40), ((64, 97, 3), 5), ((31, 40, 3), 120)])
def test_full_reference_match_skimage_on_random_pairs(shape, amp):
    rng = np.random.default_rng(amp)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = _noisy(a, rng, amp)
    assert abs(M.ssim(b, a) - _sk_ssim(b, a)) < 1e-3
    assert abs(M.psnr(b, a) - peak_signal_noise_ratio(a, b, data_range=255)) < 1e-6
    assert M.mse(b, a) == pytest.approx(mean_squared_error(a, b), rel=1e-12)


def test_full_reference_match_skimage_on_a_photo():
    a = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.BICUBIC))
    b = np.asarray(Image.fromarray(a).resize((128, 128)).resize((256, 256)))  # blurred copy
    assert abs(M.ssim(b, a) - _sk_ssim(b, a)) < 1e-3
    assert abs(M.psnr(b, a) - peak_signal_noise_ratio(a, b, data_range=255)) < 1e-6
    assert 0.3 < M.ssim(b, a) < 0.99


def test_real_pairs_from_shared_data(shared_data):
    import io

    files = sorted((shared_data / "celeba_small" / "img_align_celeba").glob("*.jpg"))[:5]
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB").resize((256, 256), Image.BICUBIC))
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=30)
        b = np.asarray(Image.open(buf).convert("RGB"))
        assert abs(M.ssim(b, a) - _sk_ssim(b, a)) < 1e-3
        assert abs(M.psnr(b, a) - peak_signal_noise_ratio(a, b, data_range=255)) < 1e-6


def test_masked_metrics_see_only_the_mask():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    b = _noisy(a, rng, 20)
    mask = np.zeros((48, 48), np.uint8)
    mask[10:30, 5:25] = 255
    c = b.copy()
    c[mask == 0] = 0  # change every pixel outside the mask
    assert M.masked_mse(c, a, mask) == M.masked_mse(b, a, mask)
    sel = mask > 0
    expected = np.mean((b[sel].astype(float) - a[sel].astype(float)) ** 2)
    assert M.masked_mse(b, a, mask) == pytest.approx(expected)
    assert M.masked_psnr(b, a, mask) == pytest.approx(10 * np.log10(255**2 / expected))
    assert M.mse(c, a) != M.mse(b, a)


def test_masked_ssim_is_the_mean_of_the_ssim_map_over_the_mask():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    b = _noisy(a, rng, 30)
    _, smap = _sk_ssim(b, a, full=True)
    mask = np.zeros((40, 40), np.uint8)
    mask[12:20, 3:33] = 1
    assert M.masked_ssim(b, a, mask) == pytest.approx(smap[mask > 0].mean(), abs=1e-6)
    assert M.masked_ssim(b, a, np.ones((40, 40))) == pytest.approx(smap.mean(), abs=1e-6)


def test_edge_cases():
    a = np.full((20, 20, 3), 100, np.uint8)
    assert M.psnr(a, a) == float("inf")
    assert M.mse(a, a) == 0.0
    empty = np.zeros((20, 20), np.uint8)
    assert np.isnan(M.masked_mse(a, a, empty))
    assert np.isnan(M.masked_psnr(a, a, empty))
    assert np.isnan(M.masked_ssim(a, a, empty))
    with pytest.raises(ValueError):
        M.mse(a, a[:10])
    with pytest.raises(ValueError):
        M.masked_mse(a, a, np.ones((5, 5)))


def test_registry_lists_every_metric_with_a_docstring():
    assert set(M.METRICS) >= {
        "ssim",
        "psnr",
        "mse",
        "masked_ssim",
        "masked_psnr",
        "masked_mse",
        "niqe",
        "niqe_native",
        "brisque",
    }
    for m in M.METRICS.values():
        assert m.fn.__doc__ and ("0-255" in m.fn.__doc__ or m.kind == "no_reference")
    assert [m.name for m in M.metrics_of("no_reference")] == ["niqe", "niqe_native", "brisque"]


def test_no_reference_metrics_rank_a_degraded_photo_worse():
    clean = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.LANCZOS))
    rng = np.random.default_rng(3)
    noisy = _noisy(clean, rng, 60)
    for name in ("niqe", "brisque"):
        fn = M.METRICS[name].fn
        s_clean, s_noisy = fn(clean), fn(noisy)
        assert np.isfinite(s_clean) and s_noisy > s_clean, name
    assert np.isnan(M.niqe_native(clean[:150, :150]))
    assert np.isfinite(M.niqe_native(clean))


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Random pairs and real-ish ones: the demo face against noisy and occluded copies."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (2, 64, 80, 3), dtype=np.uint8)
    face = np.asarray(Image.fromarray(data.astronaut()).crop((130, 10, 370, 250)).resize((96, 96)))
    occluded = face.copy()
    occluded[30:60, 20:70] = (40, 200, 90)
    return [
        (noise[0], noise[1]),
        (face, _noisy(face, rng, 8)),
        (face, _noisy(face, rng, 60)),
        (occluded, face),
    ]


@pytest.mark.parametrize("k", range(4))
def test_loss_ssim_agrees_with_the_metric(k):
    torch = pytest.importorskip("torch")
    from fdsgan_train.losses import ssim as loss_ssim

    a, b = _pairs()[k]
    metric = M.ssim(a, b)

    def t(x):
        return torch.tensor(x).permute(2, 0, 1)[None].double().div(255)

    loss_value = float(loss_ssim(t(a), t(b))[0])
    assert abs(loss_value - metric) < 1e-3
    assert 0.0 < metric < 0.999  # every pair differs, none is trivially equal
