"""model.prior: the push-pull diffusion fill, and generators that start exactly at it."""

from __future__ import annotations

import pytest
import torch

from fdsgan_train.config import load_config
from fdsgan_train.models import Generator, build_models
from fdsgan_train.prior import apply_prior, diffusion_fill
from occlusion_synth.errors import UserError

GEN = dict(base_channels=4, max_channels=8, n_down=3, middle_dilations=[1], se_reduction=2)


def _smooth_scene(n: int = 2, size: int = 32):
    """A smooth image (ramps), a rectangular hole, the input with a bright occluder there."""
    y, x = torch.meshgrid(
        torch.linspace(-0.8, 0.8, size), torch.linspace(-0.6, 0.6, size), indexing="ij"
    )
    target = torch.stack([x, y, 0.5 * (x + y)])[None].repeat(n, 1, 1, 1)
    mask = torch.zeros(n, 1, size, size)
    mask[..., 10:22, 8:20] = 1
    inp = torch.where(mask > 0, torch.ones_like(target), target)
    return inp, mask, target


def test_diffusion_fill_fills_the_hole_and_leaves_the_rest_exactly():
    inp, mask, target = _smooth_scene()
    out = diffusion_fill(inp, mask)
    hole = (mask > 0).expand_as(inp)
    assert torch.equal(out[~hole], inp[~hole])  # nothing leaks outside the mask
    err_in = (inp - target)[hole].abs().mean()
    err_out = (out - target)[hole].abs().mean()
    assert err_out < 0.1 * err_in  # the occluder is gone, the ramp continued into the hole
    assert err_out < 0.05


def test_diffusion_fill_of_a_flat_image_is_flat_and_edge_cases_are_unchanged():
    inp, mask, _ = _smooth_scene()
    flat = torch.where(mask > 0, torch.ones_like(inp), torch.full_like(inp, -0.3))
    assert torch.allclose(diffusion_fill(flat, mask), torch.full_like(inp, -0.3), atol=1e-5)
    assert torch.equal(diffusion_fill(inp, torch.zeros_like(mask)), inp)  # no hole
    assert torch.equal(diffusion_fill(inp, torch.ones_like(mask)), inp)  # nothing known
    assert apply_prior("none", inp, mask) is inp
    with pytest.raises(ValueError):
        apply_prior("telea", inp, mask)


def test_prior_generators_start_exactly_at_the_prior():
    inp, mask, _ = _smooth_scene()
    cond = torch.cat([inp, mask], 1)
    fill = diffusion_fill(inp, mask)
    torch.manual_seed(0)
    g1 = Generator(4, composite=True, prior="diffusion", **GEN)
    out1 = g1(cond)
    assert torch.equal(out1, fill)  # zero-initialised residual: step 0 is the prior
    g2 = Generator(7, composite=True, prior="diffusion", **GEN)
    assert torch.equal(g2(torch.cat([cond, out1], 1)), fill)  # G2 starts at Stage I
    # without the prior nothing is zero-initialised: the output is not the fill
    plain = Generator(4, composite=True, **GEN)
    assert not torch.allclose(plain(cond), fill, atol=1e-3)


def test_prior_generator_learns_a_residual_inside_the_hole_only():
    inp, mask, target = _smooth_scene()
    cond = torch.cat([inp, mask], 1)
    torch.manual_seed(0)
    g1 = Generator(4, composite=True, prior="diffusion", **GEN)
    opt = torch.optim.Adam(g1.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        (g1(cond) - target).abs().mean().backward()
        opt.step()
    out, fill = g1(cond).detach(), diffusion_fill(inp, mask)
    hole = (mask > 0).expand_as(out)
    assert torch.equal(out[~hole], inp[~hole])
    assert not torch.equal(out[hole], fill[hole])  # the residual is trainable


def test_prior_config_key():
    assert load_config("paper")["model"]["prior"] == "none"
    fast = load_config("fast")
    assert fast["model"]["prior"] == "diffusion"
    nets = build_models(load_config("fast"))
    assert nets["G1"].prior == nets["G2"].prior == "diffusion"
    assert build_models(load_config("paper"))["G1"].prior == "none"
    with pytest.raises(UserError, match="model.prior must be one of none, diffusion"):
        load_config("fast", {"model.prior": "telea"})
    with pytest.raises(ValueError):
        Generator(4, prior="telea", **GEN)
