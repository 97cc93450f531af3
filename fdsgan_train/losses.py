"""Losses of FD-StackGAN (paper, section 3.3): per stage ``alpha * L_r + beta * L_p + L_a``.

* ``L_r = L1 + (1 - SSIM)`` on the raw generator output against the target (the paper
  computes its losses on the whole generated image, not on a composite). With
  ``model.composite`` the generator's output already is the composite; ``loss.hole_weight``
  (not in the paper) weights the L1, SSIM and VGG terms per pixel, ``hole_weight`` inside the
  mask and 1 outside (for VGG features, the hole's share of each cell).
* ``L_p``: VGG-19 (ImageNet) feature distance, mean absolute difference summed over the
  configured ReLU layers (eq. 6), on [0, 1] images with ImageNet normalisation.
* ``L_a``: conditional GAN loss. ``bce`` is the log loss of eq. 7 as BCE-with-logits (the
  generator uses the non-saturating form); ``lsgan`` is the least-squares alternative; more
  can be registered in :data:`GAN_LOSSES`.

Images are in [-1, 1] (tanh range) everywhere outside this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from occlusion_synth.errors import UserError

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"  # torchvision IMAGENET1K_V1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's vgg19 "features" layout: conv widths per block, 'M' = max pool
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]  # fmt: skip


class MissingVGGWeights(UserError):
    """The ImageNet VGG-19 weights are not on this machine."""


def l1_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute difference; with ``weights`` (:func:`pixel_weights`) per pixel."""
    if weights is None:
        return (pred - target).abs().mean()
    return _weighted_mean((pred - target).abs(), weights)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5):
    """Per-pixel SSIM of (N, C, H, W) images in [0, 1] over the valid part (N, C, H-10, W-10).

    Gaussian window 11, sigma 1.5, no padding: the mean over channels and pixels equals
    scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)``. Computed in float32 even under autocast, the
    blur as two depthwise convolutions.
    """
    with torch.autocast(a.device.type, enabled=False):
        a, b = a.float(), b.float()
        g = _gaussian_1d(window, sigma).to(a.device)
        k = g.numel()
        stack = torch.cat([a, b, a * a, b * b, a * b], 1)  # (N, 5C, H, W)
        ch = stack.shape[1]
        blurred = F.conv2d(stack, g.view(1, 1, 1, k).expand(ch, 1, 1, k), groups=ch)
        blurred = F.conv2d(blurred, g.view(1, 1, k, 1).expand(ch, 1, k, 1), groups=ch)
        mu_a, mu_b, aa, bb, ab = blurred.chunk(5, dim=1)
        var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
        c1, c2 = 0.01**2, 0.03**2
        return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
            (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        )


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image mean SSIM of (N, C, H, W) images in [0, 1] (:func:`ssim_map` averaged).

    This is the differentiable twin of the reported metric :func:`fdsgan_train.metrics.ssim`
    (numpy, uint8); ``tests/test_metrics.py`` checks that they agree within 1e-3.
    """
    return ssim_map(a, b, window, sigma).flatten(1).mean(1)


def pixel_weights(mask: torch.Tensor, hole_weight: float) -> torch.Tensor | None:
    """``loss.hole_weight``: per-pixel loss weights, ``hole_weight`` in the hole, 1 outside.

    None for a weight of 1 (the paper: plain means, the exact unweighted code path).
    """
    if hole_weight == 1.0:
        return None
    return 1 + (hole_weight - 1) * mask.float()


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (N, C, H, W), each pixel times its weight (resized to fit)."""
    if weights is None:
        return values.mean()
    if weights.shape[-2:] != values.shape[-2:]:  # a feature map: the hole's share per cell
        weights = F.adaptive_avg_pool2d(weights, values.shape[-2:])
    return (values * weights).mean()


def ssim_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """``1 - SSIM`` of [-1, 1] images, computed on [0, 1]; with ``weights`` per pixel."""
    if weights is None:
        return 1 - ssim((pred + 1) / 2, (target + 1) / 2).mean()
    smap = ssim_map((pred + 1) / 2, (target + 1) / 2)
    top, left = (weights.shape[-2] - smap.shape[-2]) // 2, (weights.shape[-1] - smap.shape[-1]) // 2
    inner = weights[..., top : top + smap.shape[-2], left : left + smap.shape[-1]]
    return _weighted_mean(1 - smap, inner)  # weights of the pixels at the windows' centres


def reconstruction_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """``L_r = L1 + (1 - SSIM)`` (eq. 3)."""
    return l1_loss(pred, target, weights) + ssim_loss(pred, target, weights)


def default_vgg_path() -> Path:
    """Where torchvision caches the ImageNet VGG-19 (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(VGG19_URL)


def _vgg_relu_names() -> dict[str, int]:
    """``{"relu1_1": 1, ...}``: index of each ReLU in torchvision's ``vgg19().features``."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for v in _VGG19_CFG:
        if v == "M":
            index, block, conv = index + 1, block + 1, 0
            continue
        conv += 1
        names[f"relu{block}_{conv}"] = index + 1
        index += 2
    return names


def _vgg_layers(upto: int) -> nn.Sequential:
    """The first ``upto + 1`` modules of torchvision's ``vgg19().features`` (only those built)."""
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG19_CFG:
        if len(layers) > upto:
            break
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
        cin = int(v)
    return nn.Sequential(*layers[: upto + 1])


def vgg_relu_index(name: str) -> int:
    names = _vgg_relu_names()
    if name not in names:
        raise UserError(f"unknown VGG-19 layer '{name}' (use e.g. relu1_1 ... relu5_4)")
    return names[name]


class VGGPerceptualLoss(nn.Module):
    """Sum over layers of the mean absolute difference of VGG-19 ReLU features (eq. 6)."""

    def __init__(
        self,
        layers: list[str] | tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
        weights: str | Path | None = None,
        random_weights: bool = False,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.indices = sorted(vgg_relu_index(n) for n in layers)
        self.features = _vgg_layers(self.indices[-1])
        self.input_size = input_size
        if not random_weights:
            self.features.load_state_dict(load_vgg19_features(weights, self.indices[-1]))
        self.features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGPerceptualLoss:  # the VGG always stays in eval
        return self

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The configured VGG-19 ReLU features of [-1, 1] images."""
        x = ((x + 1) / 2 - self.mean) / self.std
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.indices:
                out.append(x)
        return out

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        ref: list[torch.Tensor] | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``ref``: ``feature_maps(target)`` when already computed (the trainer's two stages);
        ``weights``: per-pixel weights (:func:`pixel_weights`), pooled to each feature map."""
        if ref is None:
            with torch.no_grad():
                ref = self.feature_maps(target)
        feats = self.feature_maps(pred)
        return sum(l1_loss(p, r, weights) for p, r in zip(feats, ref, strict=True))


def load_vgg19_features(path: str | Path | None, upto: int) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of torchvision's ImageNet VGG-19, never downloading them."""
    file = Path(path) if path else default_vgg_path()
    if not file.is_file():
        raise MissingVGGWeights(
            f"VGG-19 ImageNet weights not found at {file}. Download {VGG19_URL} on a machine "
            f"with network access and put it at {default_vgg_path()} (torchvision's cache) or "
            "pass --vgg-weights FILE (--vgg-random-weights is for tests only)."
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MissingVGGWeights(f"cannot read VGG-19 weights {file}: {first}") from exc
    feats = {}
    for key, value in state.items():
        if key.startswith("features.") and int(key.split(".")[1]) <= upto:
            feats[key[len("features.") :]] = value
    if not feats:
        raise MissingVGGWeights(f"{file} holds no VGG-19 'features.*' weights")
    return feats


#: GAN losses by name (``loss.gan``): ``fn(logits, real)`` scores PatchGAN logits against an
#: all-real or all-fake target. A new loss is one :func:`gan_loss` entry.
GAN_LOSSES: dict[str, Callable[[torch.Tensor, bool], torch.Tensor]] = {}


def gan_loss(name: str):
    """Register the decorated ``fn(logits, real) -> loss`` as ``loss.gan: name``."""

    def register(fn: Callable[[torch.Tensor, bool], torch.Tensor]):
        GAN_LOSSES[name] = fn
        return fn

    return register


@gan_loss("bce")
def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """The paper's log loss (eq. 7) as BCE with logits (non-saturating for the generator)."""
    target = torch.full_like(logits, float(real), dtype=torch.float32)
    return F.binary_cross_entropy_with_logits(logits.float(), target)


@gan_loss("lsgan")
def _least_squares(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Least squares (Mao et al.): the logits regress to 1 (real) or 0 (fake)."""
    return F.mse_loss(logits.float(), torch.full_like(logits, float(real), dtype=torch.float32))


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    """The ``kind`` GAN loss of PatchGAN logits against an all-real or all-fake target."""
    if kind not in GAN_LOSSES:
        raise UserError(f"loss.gan must be one of {', '.join(GAN_LOSSES)}, not '{kind}'")
    return GAN_LOSSES[kind](logits, real)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str):
    """Mean of the real and fake terms (the 1/2 keeps D's step size like pix2pix)."""
    return 0.5 * (
        adversarial_loss(real_logits, True, kind) + adversarial_loss(fake_logits, False, kind)
    )


def build_perceptual(cfg: dict[str, Any]) -> VGGPerceptualLoss:
    p = cfg["loss"]["perceptual"]
    return VGGPerceptualLoss(p["layers"], p["weights"], p["random_weights"], p["input_size"])
