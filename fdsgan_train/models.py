"""FD-StackGAN networks: G1/D1 (Base-Net, Stage I) and G2/D2 (Refine-Net, Stage II).

Generator (paper, section 3.2), with the choices the paper leaves open (config ``model``):

* Encoder: ``n_down`` = 5 stride-2 4x4 convolutions, each conv + InstanceNorm + ReLU; the
  first has no norm (``first_norm: false``, as in pix2pix). Widths start at
  ``base_channels`` and double up to ``max_channels`` (paper preset: 64-128-256-512-512), so
  a 256x256 input reaches 8x8.
* Middle: one residual block per entry of ``middle_dilations``: two 3x3 convolutions with
  that dilation (conv + IN + ReLU, conv + IN), a squeeze-and-excitation gate on the result,
  added to the block input. The map is 8x8 there, so dilations above 4 would mostly read
  zero padding; the paper preset uses 2, 4, 2, 4.
* Decoder: ``n_down`` stride-2 4x4 transposed convolutions mirroring the encoder
  (+ IN + ReLU), each fed the previous decoder output concatenated with the encoder
  feature of the same size (U-Net skips); the last one outputs RGB through tanh.

G1 takes ``I_o`` (occluded RGB + mask, 4 channels). G2 is the same network taking ``I_o``
concatenated with G1's output (7 channels).

Mask-aware option (``model.composite: true``, not in the paper): the generator returns
``mask * out + (1 - mask) * input``, reading input and mask from its own first four input
channels, so the known pixels are copied exactly and no capacity goes into reproducing them;
everything downstream (losses, discriminator, inference) sees the composite.

Prior option (``model.prior: diffusion``, not in the paper): the generator first fills the
hole of its RGB input with a classical fill (:func:`fdsgan_train.prior.diffusion_fill`),
reads that filled image instead of the occluded one, and outputs ``base + residual``: ``base``
is the filled input for G1 and the Stage-I image (channels 4-6) for G2, ``residual`` the tanh
decoder output, whose last layer starts at zero. At initialisation both stages therefore
return the classical fill and training only has to learn a correction to it.

Discriminator (D1, D2): a conditional PatchGAN. It sees ``I_o`` (4) with a real or generated
image (3) = 7 channels: ``disc_n_down`` stride-2 4x4 convs, one stride-1 4x4 conv, and a
stride-1 4x4 conv to one logit per patch; LeakyReLU(0.2), InstanceNorm after all but the
first and last. With ``disc_n_down = 2`` each logit sees a 34x34 window (the paper's "32x32";
see :func:`patch_receptive_field`). ``model.d_spectral_norm: true`` (not in the paper; SAGAN,
where the paper's TTUR comes from, uses it) puts spectral normalisation on every convolution.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from fdsgan_train.prior import PRIORS, apply_prior


def _widths(base: int, cap: int, n: int) -> list[int]:
    return [min(base * 2**i, cap) for i in range(n)]


class SqueezeExcite(nn.Module):
    """Channel recalibration (Hu et al.): global pool -> bottleneck MLP -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class DilatedSEBlock(nn.Module):
    """Residual block of two dilated 3x3 convolutions followed by a squeeze-excitation gate."""

    def __init__(self, channels: int, dilation: int, se_reduction: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.InstanceNorm2d(channels, affine=True),
            SqueezeExcite(channels, se_reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1)]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int, last: bool) -> nn.Sequential:
    conv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
    if last:
        return nn.Sequential(conv, nn.Tanh())
    return nn.Sequential(conv, nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class Generator(nn.Module):
    """U-Net encoder / dilated+SE middle / transposed-conv decoder, output in [-1, 1]."""

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 64,
        max_channels: int = 512,
        n_down: int = 5,
        middle_dilations: tuple[int, ...] | list[int] = (2, 4, 2, 4),
        se_reduction: int = 16,
        first_norm: bool = False,
        out_channels: int = 3,
        composite: bool = False,
        prior: str = "none",
    ) -> None:
        super().__init__()
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        self.in_channels = in_channels
        self.composite = composite
        self.prior = prior
        widths = _widths(base_channels, max_channels, n_down)
        self.encoder = nn.ModuleList(
            _down(cin, cout, norm=first_norm or i > 0)
            for i, (cin, cout) in enumerate(zip([in_channels] + widths[:-1], widths, strict=True))
        )
        self.middle = nn.Sequential(
            *(DilatedSEBlock(widths[-1], int(d), se_reduction) for d in middle_dilations)
        )
        # decoder i maps to the size of encoder level n-2-i and is concatenated with it
        ups = []
        cin = widths[-1]
        for i in range(n_down):
            last = i == n_down - 1
            cout = out_channels if last else widths[n_down - 2 - i]
            ups.append(_up(cin, cout, last))
            cin = cout * 2  # concatenated with the encoder skip of the same width
        self.decoder = nn.ModuleList(ups)
        if prior != "none":  # a residual on the prior: start exactly at the prior
            nn.init.zeros_(self.decoder[-1][0].weight)
            nn.init.zeros_(self.decoder[-1][0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: input RGB in [-1, 1], mask in {0, 1}, then any further channels."""
        known = x
        if self.prior != "none":
            filled = apply_prior(self.prior, x[:, :3], x[:, 3:4])
            x = torch.cat([filled, x[:, 3:]], 1)
            base = x[:, 4:7] if x.shape[1] >= 7 else filled  # G2: the Stage-I image
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        x = self.middle(x)
        for i, layer in enumerate(self.decoder):
            x = layer(x)
            if i < len(self.decoder) - 1:
                x = torch.cat([x, skips[-2 - i]], dim=1)
        if self.prior != "none":
            x = base.to(x.dtype) + x
        if self.composite:
            mask = known[:, 3:4].to(x.dtype)
            x = mask * x + (1 - mask) * known[:, :3].to(x.dtype)
        return x


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: scores (condition, image) pairs per patch (raw logits)."""

    def __init__(
        self,
        in_channels: int = 7,
        base_channels: int = 64,
        n_down: int = 2,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        cin = base_channels
        for i in range(1, n_down + 1):  # n_down - 1 more stride-2 convs, then one stride-1
            cout = base_channels * 2 ** min(i, 3)
            stride = 2 if i < n_down else 1
            layers += [
                nn.Conv2d(cin, cout, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(cout, affine=True),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 4, stride=1, padding=1))
        if spectral_norm:
            from torch.nn.utils.parametrizations import spectral_norm as sn

            layers = [sn(m) if isinstance(m, nn.Conv2d) else m for m in layers]
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))


def patch_receptive_field(disc: PatchDiscriminator) -> int:
    """Side of the input window one output logit sees, from the conv kernels and strides."""
    size = 1
    for layer in reversed([m for m in disc.net if isinstance(m, nn.Conv2d)]):
        size = (size - 1) * layer.stride[0] + layer.kernel_size[0]
    return size


def build_models(cfg: dict[str, Any]) -> dict[str, nn.Module]:
    """The four networks of a config: ``{"G1", "G2", "D1", "D2"}``."""
    m = cfg["model"]
    gen = dict(
        base_channels=m["base_channels"],
        max_channels=m["max_channels"],
        n_down=m["n_down"],
        middle_dilations=list(m["middle_dilations"]),
        se_reduction=m["se_reduction"],
        first_norm=m["first_norm"],
        composite=m["composite"],
        prior=m["prior"],
    )
    cond = m["in_channels"]
    disc = dict(
        base_channels=m["disc_base_channels"],
        n_down=m["disc_n_down"],
        spectral_norm=m["d_spectral_norm"],
    )
    return {
        "G1": Generator(cond, **gen),
        "G2": Generator(cond + 3, **gen),
        "D1": PatchDiscriminator(cond + 3, **disc),
        "D2": PatchDiscriminator(cond + 3, **disc),
    }


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(cfg: dict[str, Any], size: int = 256) -> str:
    """Architecture summary: each network's blocks, output shapes and parameter counts."""
    models = build_models(cfg)
    cond = torch.zeros(1, cfg["model"]["in_channels"], size, size)
    img = torch.zeros(1, 3, size, size)
    lines = []
    for name, net in models.items():
        lines.append(
            f"{name}: {type(net).__name__}, in_channels={net.in_channels}, "
            f"{count_parameters(net):,} parameters"
        )
        shapes: dict[str, tuple[int, ...]] = {}
        hooks = []
        for child_name, child in _summary_children(net):
            hooks.append(
                child.register_forward_hook(
                    lambda _m, _i, out, key=child_name, seen=shapes: seen.__setitem__(
                        key, tuple(out.shape)
                    )
                )
            )
        with torch.no_grad():
            if isinstance(net, Generator):
                net(torch.cat([cond, img], 1) if net.in_channels > cond.shape[1] else cond)
            else:
                net(cond, img)
        for h in hooks:
            h.remove()
        for child_name, child in _summary_children(net):
            extra = f"  dilation={child.dilation}" if isinstance(child, DilatedSEBlock) else ""
            lines.append(
                f"  {child_name:<14} {str(shapes.get(child_name, '')):<22} "
                f"{count_parameters(child):>12,}{extra}"
            )
        if isinstance(net, PatchDiscriminator):
            rf = patch_receptive_field(net)
            lines.append(f"  receptive field: {rf}x{rf} pixels per output logit")
    total = sum(count_parameters(n) for n in models.values())
    lines.append(f"total: {total:,} parameters")
    return "\n".join(lines)


def _summary_children(net: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(net, Generator):
        return (
            [(f"encoder.{i}", m) for i, m in enumerate(net.encoder)]
            + [(f"middle.{i}", m) for i, m in enumerate(net.middle)]
            + [(f"decoder.{i}", m) for i, m in enumerate(net.decoder)]
        )
    return [(f"net.{i}", m) for i, m in enumerate(net.net) if isinstance(m, nn.Conv2d)]


class GeneratorEMA:
    """Averaged copies of the generators (``models``: name -> module), updated in place.

    ``train.ema`` = decay (0 = off; not in the paper). The effective decay ramps up as
    ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a short run is not dominated by
    the initial weights.
    """

    def __init__(self, models: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.models = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in models.items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, models: dict[str, nn.Module]) -> None:
        d = self.current_decay()
        for k, avg in self.models.items():
            src = models[k]
            ema_p = [p for p in avg.parameters()]
            raw_p = [p.detach() for p in src.parameters()]
            torch._foreach_lerp_(ema_p, raw_p, 1 - d)
            for b_avg, b_src in zip(avg.buffers(), src.buffers(), strict=True):
                b_avg.copy_(b_src)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates} | {k: m.state_dict() for k, m in self.models.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for k, m in self.models.items():
            m.load_state_dict(state[k])
