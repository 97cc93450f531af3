"""Losses on known inputs: L1, SSIM (against scikit-image), VGG perceptual, GAN losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from fdsgan_train import losses
from fdsgan_train.config import load_config
from fdsgan_train.losses import (
    GAN_LOSSES,
    VGG19_URL,
    MissingVGGWeights,
    VGGPerceptualLoss,
    adversarial_loss,
    discriminator_loss,
    gan_loss,
    l1_loss,
    reconstruction_loss,
    ssim,
    ssim_loss,
    vgg_relu_index,
)
from occlusion_synth.errors import UserError


def _images(seed: int = 0, n: int = 2, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(n, 3, size, size, generator=g), 5, 1, 2)
    return smooth * 2 - 1  # [-1, 1], with some structure


def test_l1_equals_hand_computed_value():
    pred = torch.tensor([[[[0.0, 0.5], [-1.0, 1.0]]]])
    target = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    assert l1_loss(pred, target).item() == pytest.approx((1 + 0 + 1 + 1) / 4)


def test_ssim_loss_is_zero_for_identical_images():
    x = _images()
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert ssim_loss(x, _images(1)).item() > 0.1


def test_ssim_matches_scikit_image():
    a, b = _images(0), (_images(0) + 0.3 * _images(1)).clamp(-1, 1)
    a01, b01 = (a + 1) / 2, (b + 1) / 2
    ours = ssim(a01, b01)
    for i in range(a.shape[0]):
        ref = structural_similarity(
            a01[i].permute(1, 2, 0).numpy().astype(np.float64),
            b01[i].permute(1, 2, 0).numpy().astype(np.float64),
            channel_axis=2,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert ours[i].item() == pytest.approx(ref, abs=2e-5)


def test_reconstruction_loss_is_l1_plus_one_minus_ssim():
    a, b = _images(0), _images(1)
    assert reconstruction_loss(a, b).item() == pytest.approx(
        l1_loss(a, b).item() + 1 - ssim((a + 1) / 2, (b + 1) / 2).mean().item(), rel=1e-6
    )


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return VGGPerceptualLoss(["relu1_1", "relu2_1"], random_weights=True, input_size=32)


def test_perceptual_loss_zero_for_identical_and_positive_otherwise(vgg):
    a, b = _images(0), _images(1)
    assert vgg(a, a).item() == 0.0
    pred = b.clone().requires_grad_(True)
    loss = vgg(pred, a)
    assert loss.item() > 0
    with torch.no_grad():  # the target's features, computed once, give the same loss
        assert vgg(pred, a, vgg.feature_maps(a)).item() == loss.item()
        assert vgg(pred, a, vgg.feature_maps(b)).item() != loss.item()
    loss.backward()
    assert pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in vgg.parameters())


def test_vgg_weights_load_from_a_torchvision_style_file(tmp_path, vgg):
    state = {f"features.{k}": v for k, v in vgg.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the full model's other keys are ignored
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = VGGPerceptualLoss(["relu1_1", "relu2_1"], weights=tmp_path / "vgg19.pth")
    for name, tensor in vgg.features.state_dict().items():
        assert torch.equal(loaded.features.state_dict()[name], tensor)


def test_vgg_layout_and_layer_names_match_torchvision():
    vgg_module = pytest.importorskip("torchvision.models.vgg")
    theirs = vgg_module.make_layers(vgg_module.cfgs["E"])  # vgg19().features, random weights
    ours = VGGPerceptualLoss(["relu5_4"], random_weights=True).features
    shapes = {k: v.shape for k, v in theirs.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == shapes
    assert isinstance(theirs[vgg_relu_index("relu1_1")], torch.nn.ReLU)
    assert isinstance(theirs[vgg_relu_index("relu4_1")], torch.nn.ReLU)
    assert vgg_relu_index("relu4_1") == 20 and vgg_relu_index("relu5_4") == len(theirs) - 2
    # the relu4_1 network stops right after that layer
    assert len(VGGPerceptualLoss(["relu4_1"], random_weights=True).features) == 21


def test_missing_vgg_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(MissingVGGWeights) as err:
        VGGPerceptualLoss(weights=tmp_path / "nope.pth")
    message = err.value.message
    assert VGG19_URL in message and "--vgg-weights" in message and "\n" not in message


def test_adversarial_losses_on_known_logits():
    zeros = torch.zeros(2, 1, 4, 4)
    assert adversarial_loss(zeros, True, "bce").item() == pytest.approx(math.log(2))
    assert adversarial_loss(zeros, False, "lsgan").item() == 0.0
    assert adversarial_loss(zeros, True, "lsgan").item() == 1.0
    big = torch.full((1, 1, 2, 2), 20.0)
    assert discriminator_loss(big, -big, "bce").item() == pytest.approx(0.0, abs=1e-6)
    assert discriminator_loss(-big, big, "bce").item() == pytest.approx(20.0, rel=1e-3)


def test_gan_losses_are_a_registry(monkeypatch):
    assert set(GAN_LOSSES) == {"bce", "lsgan"}
    with pytest.raises(UserError, match="loss.gan must be one of bce, lsgan"):
        load_config("tiny", {"loss.gan": "hinge"})
    monkeypatch.setattr(losses, "GAN_LOSSES", dict(GAN_LOSSES))  # undone after the test

    @gan_loss("hinge")  # one entry: the config and the trainer accept it
    def hinge(logits: torch.Tensor, real: bool) -> torch.Tensor:
        return torch.relu(1 - logits if real else 1 + logits).mean()

    assert load_config("tiny", {"loss.gan": "hinge"})["loss"]["gan"] == "hinge"
    logits = torch.tensor([[[[2.0, -0.5]]]])
    assert discriminator_loss(logits, logits, "hinge").item() == pytest.approx(1.25)
