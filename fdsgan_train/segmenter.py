"""The occlusion segmenter: an aligned 256x256 face in, the occluder's mask out.

A compact U-Net (``segment.encoder: unet``, 0.64M parameters in the segmenter preset) that
trains from scratch on a CPU, or a ResNet-18 encoder (``resnet18``) that can start from a
local torchvision weights file (``segment.backbone_weights``; nothing is downloaded). The
network sees the frame resized to ``segment.size`` (128 by default) and returns one logit per
pixel at that size; :class:`Segmenter` upsamples the probabilities back to the 256x256 frame.

Training augmentation (:func:`augment`) is photometric and geometric, applied to the image
and the mask together: flips, scale/shift/rotation, colour, blur or down-and-up sampling,
JPEG, noise. Real photos differ from the builder's composites mostly in those ways.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from occlusion_synth.errors import UserError

#: ``kind`` of a segmenter checkpoint (``checkpoint.load_checkpoint(kind=...)``).
KIND = "segmenter"


# --------------------------------------------------------------------------- the network


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Down(nn.Sequential):
    """A stride-2 convolution then a plain one."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__(_conv(cin, cout, 2), _conv(cout, cout, dilation=dilation))


class _Up(nn.Module):
    """Upsample x2 (``mode``: bilinear or nearest), concatenate the skip, two convolutions."""

    def __init__(self, cin: int, skip: int, cout: int, mode: str = "bilinear") -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(cin + skip, cout), _conv(cout, cout))
        self.kw = {"mode": mode} | ({"align_corners": False} if mode == "bilinear" else {})

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], **self.kw)
        return self.body(torch.cat([x, skip], 1))


class UNetEncoder(nn.Module):
    """The input itself, then scales 1/2 .. 1/16 of ``base`` x ``widths`` channels (a stride-2
    stem keeps the full-resolution work to the decoder's last stage); the deepest with
    dilated convolutions."""

    def __init__(self, base: int, widths: tuple[int, ...] = (1, 2, 3, 4)) -> None:
        super().__init__()
        c = [3] + [base * w for w in widths]
        self.channels = c
        self.stem = nn.Sequential(_conv(3, c[1], 2), _conv(c[1], c[1]))
        self.downs = nn.ModuleList([_Down(c[1], c[2]), _Down(c[2], c[3]), _Down(c[3], c[4], 2)])
        self.context = _conv(c[4], c[4], dilation=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [x, self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        feats[-1] = feats[-1] + self.context(feats[-1])
        return feats


class ResNetEncoder(nn.Module):
    """torchvision's ResNet-18 trunk (scales 1/2 .. 1/32), plus the input itself at 1."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet18

        self.net = resnet18(weights=None)
        del self.net.fc
        self.channels = [3, 64, 64, 128, 256, 512]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        f1 = n.relu(n.bn1(n.conv1(x)))
        f2 = n.layer1(n.maxpool(f1))
        f3 = n.layer2(f2)
        f4 = n.layer3(f3)
        return [x, f1, f2, f3, f4, n.layer4(f4)]


class SegmenterNet(nn.Module):
    """Encoder, U-Net decoder with skips, one logit per pixel at the input's size.

    The decoder's last stage (its skip: the input itself) has ``full_res_channels`` (None:
    half of ``base_channels``, at least 4, as the first presets had). On a CPU, 16 channels
    there train faster than 8: PyTorch's channels-last batch-norm backward is slow below 16
    channels (at 8, its two layers there took 40 ms of a 144 ms step in torch's profiler).
    """

    def __init__(
        self,
        encoder: str = "unet",
        base_channels: int = 16,
        upsample: str = "bilinear",
        widths: tuple[int, ...] = (1, 2, 3, 4),
        full_res_channels: int | None = None,
    ) -> None:
        super().__init__()
        if encoder == "resnet18":
            self.encoder: nn.Module = ResNetEncoder()
        else:
            self.encoder = UNetEncoder(base_channels, tuple(widths))
        c = self.encoder.channels
        last = full_res_channels or max(base_channels // 2, 4)
        ups, cin = [], c[-1]
        for skip in reversed(c[:-1]):
            cout = max(skip, base_channels) if skip != 3 else last
            ups.append(_Up(cin, skip, cout, upsample))
            cin = cout
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(cin, 1, 1)
        nn.init.constant_(self.head.bias, -2.0)  # start near the usual coverage (~12 %)
        # ImageNet statistics for the ResNet, [-1, 1] for the U-Net (what the data holds)
        mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        self.imagenet = encoder == "resnet18"
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (N, 3, H, W) -> occlusion logits (N, 1, H, W)."""
        if self.imagenet:
            x = ((x + 1) / 2 - self.mean) / self.std
        feats = self.encoder(x)
        y = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            y = up(y, skip)
        return self.head(y)


def build_segmenter(cfg: dict[str, Any]) -> SegmenterNet:
    """The network of a config's ``segment`` section, with its backbone weights when given."""
    s = cfg["segment"]
    net = SegmenterNet(
        s["encoder"], s["base_channels"], s["upsample"], s["widths"], s["full_res_channels"]
    )
    if s["backbone_weights"]:
        load_backbone(net, Path(s["backbone_weights"]))
    return net


def load_backbone(net: SegmenterNet, path: Path) -> None:
    """Load a local encoder weights file into ``net.encoder`` (no download, ever).

    For ``resnet18`` a torchvision ResNet-18 state dict (its ``fc.*`` is ignored); for
    ``unet`` the ``encoder.*`` part of a segmenter's state dict, or the encoder's own.
    """
    if not path.is_file():
        raise UserError(f"segment.backbone_weights: no such file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file ends the same way
        msg = f"segment.backbone_weights: cannot read {path} ({type(exc).__name__})"
        raise UserError(msg) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"segment.backbone_weights: {path} is not a state dict")
    target = net.encoder.net if isinstance(net.encoder, ResNetEncoder) else net.encoder
    state = {k.removeprefix("encoder."): v for k, v in state.items() if not k.startswith("fc.")}
    want = target.state_dict()
    bad = [k for k in want if k not in state or tuple(state[k].shape) != tuple(want[k].shape)]
    if bad:
        raise UserError(
            f"segment.backbone_weights: {path} does not fit the {type(target).__name__} "
            f"encoder ({len(bad)} tensors missing or of another shape, e.g. {bad[0]})"
        )
    target.load_state_dict({k: state[k] for k in want})


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --------------------------------------------------------------------------- loss


def segment_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float) -> dict:
    """Binary cross-entropy plus ``dice_weight`` x soft Dice loss (per image, then mean)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), target)
    prob = torch.sigmoid(logits.float()).flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (prob * t).sum(1) + 1) / (prob.sum(1) + t.sum(1) + 1)
    dice = dice.mean()
    return {"bce": bce, "dice": dice, "total": bce + dice_weight * dice}


def batch_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of ``logits > 0`` with ``target > 0.5`` (1 where both are empty)."""
    p, t = (logits > 0).flatten(1), (target > 0.5).flatten(1)
    inter, union = (p & t).sum(1).float(), (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


# --------------------------------------------------------------------------- augmentation


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) resized to ``size`` x ``size`` (area when shrinking: no aliasing)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    mode = "area" if x.shape[-1] > size else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=(size, size), mode=mode, **kw)


def _gauss_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image blurred by its own Gaussian ``sigma`` (N,) in pixels (0: unchanged)."""
    radius = 4
    r = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)  # (N, K)
    n, c, h, w = x.shape
    y = x.reshape(1, n * c, h, w)
    kh = k.repeat_interleave(c, 0)[:, None, None, :]
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), kh, groups=n * c)
    kv = k.repeat_interleave(c, 0)[:, None, :, None]
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), kv, groups=n * c)
    return y.reshape(n, c, h, w)


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """One [-1, 1] image through a JPEG round trip at ``quality``."""
    from PIL import Image

    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(back.copy()).permute(2, 0, 1).float() / 127.5 - 1


def augment(
    image: torch.Tensor, mask: torch.Tensor, aug: dict[str, Any], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch (image (N,3,S,S) in [-1,1], mask (N,1,S,S) in [0,1]) per ``aug``.

    Geometry (image and mask together): a left-right flip with probability 1/2, a random
    similarity (scale ``1 +- scale``, shift ``+- shift`` of the side, rotation ``+- rotate``
    degrees; the image's border is reflected). Photometry (image only), each with the
    probability its key gives: colour (brightness, contrast, saturation, per-channel gain,
    gamma, grey, with ``colour`` as the strength and probability), blur (Gaussian, or down and
    up sampling), JPEG (quality 25-90) and Gaussian noise.
    """
    n = image.shape[0]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen)

    if aug["hflip"]:
        flip = (rand(n) < 0.5).view(-1, 1, 1, 1)
        image = torch.where(flip, image.flip(-1), image)
        mask = torch.where(flip, mask.flip(-1), mask)
    if aug["scale"] or aug["shift"] or aug["rotate"]:
        scale = 1 + (rand(n) * 2 - 1) * aug["scale"]
        angle = (rand(n) * 2 - 1) * math.radians(aug["rotate"])
        shift = (rand(n, 2) * 2 - 1) * aug["shift"] * 2  # grid units: the side is 2
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        image = F.grid_sample(image, grid, padding_mode="reflection", align_corners=False)
        mask = F.grid_sample(mask, grid, padding_mode="zeros", align_corners=False)
    strength = aug["colour"]
    if strength:
        on = (rand(n) < max(strength, 0.5)).view(-1, 1, 1, 1).float()
        x = (image + 1) / 2
        bright = 1 + (rand(n, 1, 1, 1) * 2 - 1) * strength
        contrast = 1 + (rand(n, 1, 1, 1) * 2 - 1) * strength
        sat = 1 + (rand(n, 1, 1, 1) * 2 - 1) * strength * 1.5
        gains = 1 + (rand(n, 3, 1, 1) * 2 - 1) * strength * 0.3
        gamma = torch.exp((rand(n, 1, 1, 1) * 2 - 1) * strength)
        grey_w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        y = x * bright * gains
        mean = y.mean((1, 2, 3), keepdim=True)
        y = (y - mean) * contrast + mean
        grey = (y * grey_w).sum(1, keepdim=True)
        y = torch.where(rand(n).view(-1, 1, 1, 1) < 0.1, grey.expand_as(y), y)
        y = (y - grey) * sat + grey
        y = y.clamp(0, 1) ** gamma
        image = on * (y * 2 - 1) + (1 - on) * image
    if aug["blur"]:
        chosen = rand(n) < aug["blur"]
        low_res = rand(n) < 0.5
        sigma = torch.where(chosen & ~low_res, 0.3 + rand(n) * 1.2, torch.zeros(n))
        if (sigma > 0).any():
            image = torch.where((sigma > 0).view(-1, 1, 1, 1), _gauss_blur(image, sigma), image)
        size = image.shape[-1]
        for i in torch.nonzero(chosen & low_res).flatten().tolist():
            small = max(16, int(size * (0.25 + 0.5 * float(rand(1)))))
            down = F.interpolate(image[i : i + 1], size=(small, small), mode="area")
            image[i : i + 1] = F.interpolate(
                down, size=(size, size), mode="bilinear", align_corners=False
            )
    if aug["jpeg"]:
        for i in torch.nonzero(rand(n) < aug["jpeg"]).flatten().tolist():
            image[i] = _jpeg(image[i], int(25 + 65 * float(rand(1))))
    if aug["noise"]:
        std = torch.where(rand(n) < aug["noise"], rand(n) * 0.08, torch.zeros(n))
        image = image + torch.randn(image.shape, generator=gen) * std.view(-1, 1, 1, 1)
    return image.clamp(-1, 1), mask.clamp(0, 1)


# --------------------------------------------------------------------------- inference


def load_segmenter(path: str | Path, device: str | torch.device = "cpu"):
    """``(net, config)`` of a segmenter checkpoint, in eval mode on ``device``.

    A checkpoint of another kind (a de-occlusion G checkpoint) is a one-line ``UserError``.
    """
    from fdsgan_train import checkpoint as ckpt_io

    ckpt = ckpt_io.load_checkpoint(path, kind=KIND)
    net = build_segmenter(_without_backbone(ckpt["config"]))
    ema = ckpt.get("ema")  # train.ema: the averaged weights, as validated
    state = ema["S"] if isinstance(ema, dict) and isinstance(ema.get("S"), dict) else None
    state = state or ckpt["models"]["S"]
    problem = ckpt_io.mismatch("S", net, state)
    if problem:
        raise UserError(f"checkpoint {path} does not fit its own config: {problem}")
    bad = ckpt_io.nonfinite(state)
    if bad:
        raise UserError(f"checkpoint {path} holds NaN or infinite weights (e.g. {bad[0]})")
    net.load_state_dict(state)
    return net.to(device).eval(), ckpt["config"]


def _without_backbone(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config without its backbone file: a trained checkpoint holds those weights."""
    seg = dict(cfg["segment"], backbone_weights=None)
    return {**cfg, "segment": seg}


class Segmenter:
    """A trained segmenter: uint8 256x256 RGB frames in, occlusion probabilities out.

    With ``flip`` (the default) each frame's logits are the mean of the frame's and of its
    mirror image's (flipped back): test-time augmentation, at twice the network's cost.
    """

    def __init__(
        self, net: SegmenterNet, config: dict[str, Any], device: str = "cpu", flip: bool = True
    ) -> None:
        self.net = net.eval().to(device, memory_format=torch.channels_last)
        self.config, self.device, self.flip = config, device, flip
        self.size = config["segment"]["size"]

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Segmenter:
        from .train import resolve_device

        try:
            dev = str(resolve_device(device))
        except RuntimeError as exc:
            raise UserError(f"--device {device}: {exc}") from None
        net, config = load_segmenter(path, dev)
        return cls(net, config, dev)

    @torch.inference_mode()
    def probabilities(self, frames: list[np.ndarray], batch_size: int = 16) -> list[np.ndarray]:
        """(H, W) float32 occlusion probabilities, one per (H, W, 3) uint8 frame."""
        out: list[np.ndarray] = []
        for i in range(0, len(frames), batch_size):
            chunk = frames[i : i + batch_size]
            x = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).float() / 127.5 - 1
            h, w = x.shape[-2:]
            x = resize(x, self.size).to(self.device, memory_format=torch.channels_last)
            logits = self.net(x).float()
            if self.flip:
                logits = (logits + self.net(x.flip(-1)).float().flip(-1)) / 2
            logits = F.interpolate(logits.cpu(), size=(h, w), mode="bilinear", align_corners=False)
            out += list(torch.sigmoid(logits)[:, 0].numpy())
        return out

    def masks(self, frames: list[np.ndarray], threshold: float = 0.5) -> list[np.ndarray]:
        """(H, W) uint8 masks, 255 where the probability exceeds ``threshold``."""
        return [
            np.where(p > threshold, 255, 0).astype(np.uint8) for p in self.probabilities(frames)
        ]


def photo_mask(segmenter: Segmenter, photo: np.ndarray, dilate: int = 0) -> np.ndarray:
    """The occluder's mask in a photo's own pixels: (H, W) uint8, 255 = occluded.

    The face is found and aligned as ``fdsgan-infer`` aligns it, the segmenter's frame
    probabilities are warped back (bilinear, > 0.5) and, with ``dilate`` > 0, the mask is
    grown by that many photo pixels. Outside the aligned crop nothing is predicted (0).
    A photo without a detectable face is a ``UserError``.
    """
    import cv2

    from occlusion_synth.landmarks import invert_affine

    from .infer import align_photo

    h, w = photo.shape[:2]
    aligned = align_photo(photo, np.zeros((h, w), np.uint8))
    prob = segmenter.probabilities([aligned.image])[0]
    back = cv2.warpAffine(
        prob, invert_affine(aligned.matrix), (w, h), flags=cv2.INTER_LINEAR, borderValue=0
    )
    mask = np.where(back > 0.5, 255, 0).astype(np.uint8)
    if dilate > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        mask = cv2.dilate(mask, disk)
    return mask


def harvest_masker(checkpoint: str | Path, device: str = "auto"):
    """For ``occsynth occluders harvest --masks auto``: ``rgb -> mask`` from a segmenter."""
    segmenter = Segmenter.from_checkpoint(checkpoint, device)

    def masker(rgb: np.ndarray) -> np.ndarray:
        return photo_mask(segmenter, rgb)

    return masker
