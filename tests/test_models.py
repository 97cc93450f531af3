"""Architecture of the four networks (paper, section 3) and the --describe summary."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from fdsgan_train.cli import train_main
from fdsgan_train.config import load_config
from fdsgan_train.models import (
    DilatedSEBlock,
    Generator,
    PatchDiscriminator,
    SqueezeExcite,
    build_models,
    patch_receptive_field,
)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return build_models(load_config("tiny"))


def test_generator_encoder_has_five_downsamplings_to_8x8(models):
    g1 = models["G1"]
    convs = [m for m in g1.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(c.stride == (2, 2) for c in convs)
    assert all(isinstance(b[1], nn.InstanceNorm2d) for b in list(g1.encoder)[1:])
    shapes = []
    hook = g1.middle.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
    out = g1(torch.randn(1, 4, 256, 256))
    hook.remove()
    assert shapes[0][-2:] == (8, 8)
    assert out.shape == (1, 3, 256, 256) and out.abs().max() <= 1  # tanh output
    ups = [m for m in g1.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 5 and all(u.stride == (2, 2) for u in ups)


def test_middle_is_dilated_convolutions_with_squeeze_excitation():
    cfg = load_config("paper")
    g = Generator(4, base_channels=8, max_channels=32, middle_dilations=[2, 4, 2, 4])
    blocks = list(g.middle)
    assert [b.dilation for b in blocks] == cfg["model"]["middle_dilations"] == [2, 4, 2, 4]
    for block in blocks:
        assert isinstance(block, DilatedSEBlock)
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert convs and all(c.dilation == (block.dilation,) * 2 for c in convs)
        assert any(isinstance(m, SqueezeExcite) for m in block.modules())


def test_skip_connections_carry_encoder_features():
    torch.manual_seed(0)
    g = Generator(4, base_channels=4, max_channels=16)
    assert g.decoder[1][0].in_channels == 2 * g.decoder[0][0].out_channels


def test_input_channels_of_the_four_networks(models):
    assert models["G1"].encoder[0][0].in_channels == 4
    assert models["G2"].encoder[0][0].in_channels == 7  # I_o (4) + Stage-I output (3)
    for d in ("D1", "D2"):
        assert models[d].net[0].in_channels == 7  # I_o (4) + real or generated image (3)


def test_discriminator_is_conditioned_on_the_input(models):
    d = models["D1"].eval()
    image = torch.rand(1, 3, 256, 256)
    a = d(torch.zeros(1, 4, 256, 256), image)
    b = d(torch.ones(1, 4, 256, 256), image)
    assert a.shape[1] == 1 and a.shape[-1] > 1  # a map of patch scores
    assert not torch.allclose(a, b)


def test_receptive_field_is_about_32_pixels():
    d = PatchDiscriminator(7, base_channels=4, n_down=2)
    assert patch_receptive_field(d) == 34
    # measure it: without instance norm (which mixes the whole image) the gradient of one
    # output logit reaches exactly the pixels it sees
    for i, m in enumerate(d.net):
        if isinstance(m, nn.InstanceNorm2d):
            d.net[i] = nn.Identity()
    for m in d.net:
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.01)
    x = torch.rand(1, 4, 128, 128, requires_grad=True)
    out = d(x, torch.rand(1, 3, 128, 128))
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    seen = x.grad[0].abs().sum(0) > 0
    rows, cols = seen.any(1).nonzero(), seen.any(0).nonzero()
    assert rows.max() - rows.min() + 1 == 34 and cols.max() - cols.min() + 1 == 34


def test_describe_prints_the_four_networks():
    result = CliRunner().invoke(train_main, ["--describe", "--config", "tiny"])
    assert result.exit_code == 0, result.output
    for name in (
        "G1: Generator, in_channels=4",
        "G2: Generator, in_channels=7",
        "D1: PatchDiscriminator, in_channels=7",
        "D2: PatchDiscriminator",
    ):
        assert name in result.output
    total = sum(
        sum(p.numel() for p in m.parameters()) for m in build_models(load_config("tiny")).values()
    )
    assert f"total: {total:,} parameters" in result.output
    assert "receptive field: 34x34" in result.output and "dilation=4" in result.output
