"""Training options outside the paper: mask-aware composite, hole weights, spectral norm on D,
EMA, augmentation, warm-up/decay and batch scaling, the `fast` preset; and that `paper` keeps
all of them off."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from test_train import MICRO, _train

from fdsgan_train import data as A
from fdsgan_train.checkpoint import load_checkpoint, load_generators
from fdsgan_train.config import ADDED_KEYS, load_config, validate
from fdsgan_train.losses import l1_loss, pixel_weights, ssim_loss
from fdsgan_train.models import Generator, GeneratorEMA, PatchDiscriminator
from fdsgan_train.tick import Schedule, batch_scale, lr_factor
from fdsgan_train.toy_data import write_toy_shards
from fdsgan_train.train import Trainer, composite

FAST_MICRO = MICRO | {  # the fast preset's options at test size
    "base": "fast",
    "optim": {"warmup_steps": 2},
    "train": {"log_every": 1, "sample_every": 100, "checkpoint_every": 100, "val_every": 2},
}


def _hole(n: int = 2, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    target = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, size, size)
    mask[..., 10:20, 6:22] = 1
    inp = torch.where(mask > 0, torch.full_like(target, 0.8), target)
    return inp, mask, target


# ------------------------------------------------------------------ model options
def test_composite_generator_copies_the_input_outside_the_mask_exactly():
    inp, mask, _ = _hole()
    torch.manual_seed(0)
    g = Generator(
        4, base_channels=4, max_channels=8, n_down=3, middle_dilations=[1], composite=True
    )
    out = g(torch.cat([inp, mask], 1))
    outside = (mask == 0).expand_as(out)
    assert torch.equal(out[outside], inp[outside])
    assert not torch.equal(out[~outside], inp[~outside])  # the hole is generated
    torch.manual_seed(0)
    raw = Generator(4, base_channels=4, max_channels=8, n_down=3, middle_dilations=[1])
    assert torch.allclose(raw(torch.cat([inp, mask], 1))[~outside], out[~outside])
    # G2's input carries I_o first: it composites against the same input and mask
    g2 = Generator(
        7, base_channels=4, max_channels=8, n_down=3, middle_dilations=[1], composite=True
    )
    out2 = g2(torch.cat([inp, mask, out], 1))
    assert torch.equal(out2[outside], inp[outside])


def test_spectral_norm_discriminator_has_unit_spectral_norm():
    torch.manual_seed(0)
    d = PatchDiscriminator(7, base_channels=4, n_down=2, spectral_norm=True)
    x = torch.randn(2, 4, 32, 32), torch.randn(2, 3, 32, 32)
    for _ in range(30):  # power iterations run in training mode
        d(*x)
    conv = d.net[0]
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert sigma == pytest.approx(1.0, abs=0.05)
    assert "parametrizations.weight.original" in "".join(d.state_dict())
    plain = PatchDiscriminator(7, base_channels=4, n_down=2)
    assert "parametrizations" not in "".join(plain.state_dict())


# ------------------------------------------------------------------ losses
def test_hole_weight_one_is_the_paper_loss_and_more_weights_the_hole():
    inp, mask, target = _hole()
    assert pixel_weights(mask, 1.0) is None
    w = pixel_weights(mask, 5.0)
    assert set(w.unique().tolist()) == {1.0, 5.0}
    pred = target.clone()
    pred[mask.expand_as(pred) > 0] += 0.2  # errors only inside the hole
    assert l1_loss(pred, target, w) == pytest.approx(5 * l1_loss(pred, target).item(), rel=1e-5)
    # SSIM: the same windows, the hole's counted 5x
    assert ssim_loss(pred, target, w) > 2 * ssim_loss(pred, target)
    assert ssim_loss(pred, target, pixel_weights(mask, 1.0)) == ssim_loss(pred, target)


# ------------------------------------------------------------------ augmentation
def test_flips_mirror_input_mask_and_target_together():
    inp, mask, target = _hole()
    mask[0, :, 0, 0] = 1  # asymmetric marks
    batch = {"input": inp, "mask": mask, "target": target}
    out = A.hflip(batch, torch.tensor([True, False]))
    for k in ("input", "mask", "target"):
        assert torch.equal(out[k][0], batch[k][0].flip(-1))
        assert torch.equal(out[k][1], batch[k][1])
    assert out["mask"][0, 0, 0, -1] == 1


@pytest.mark.parametrize("radius", [-2, -1, 1, 3])
def test_mask_dilation_and_erosion_keep_input_equal_to_target_outside(radius):
    inp, mask, target = _hole()
    out = A.reshape_masks({"input": inp, "mask": mask, "target": target}, [radius, 0])
    area = out["mask"][0].sum().item()
    assert area == (10 + 2 * radius) * (16 + 2 * radius)  # a 10x16 box grown / shrunk
    assert torch.equal(out["mask"][1], mask[1])
    outside = (out["mask"] == 0).expand_as(inp)
    assert torch.equal(out["input"][outside], out["target"][outside])
    inside = (out["mask"] > 0).expand_as(inp)
    assert torch.equal(out["input"][inside], inp[inside])  # dilation leaves the input as is


def test_augmentation_is_a_function_of_its_generator_seed():
    inp, mask, target = _hole(8)
    cfg = {"hflip": True, "mask_dilate": 3, "mask_erode": 2}
    batch = {"input": inp, "mask": mask, "target": target}
    a = A.augment_batch(batch, cfg, torch.Generator().manual_seed(7))
    b = A.augment_batch(batch, cfg, torch.Generator().manual_seed(7))
    assert all(torch.equal(a[k], b[k]) for k in a)
    areas = {int(m.sum()) for m in a["mask"]}
    assert len(areas) > 1  # radii differ between samples


# ------------------------------------------------------------------ schedule
def test_warmup_then_cosine_and_linear_decay():
    assert [lr_factor(s, 100, 4, "none", 0.0) for s in (0, 1, 3, 4, 99)] == [0.25, 0.5, 1, 1, 1]
    assert lr_factor(4, 100, 4, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(99, 100, 4, "cosine", 0.1) == pytest.approx(0.1)
    mid = 4 + (100 - 4 - 1) / 2
    assert lr_factor(int(mid), 100, 4, "cosine", 0.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * (int(mid) - 4) / 95))
    )
    assert lr_factor(99, 100, 0, "linear", 0.0) == pytest.approx(0.0)
    assert lr_factor(50, 101, 0, "linear", 0.0) == pytest.approx(0.5)


def test_batch_scaling_rules():
    o = {"reference_batch": 10, "lr_scaling": "none"}
    assert batch_scale(o, 40) == 1.0
    assert batch_scale(o | {"lr_scaling": "linear"}, 40) == 4.0
    assert batch_scale(o | {"lr_scaling": "sqrt"}, 40) == 2.0


def test_trainer_sets_scheduled_and_scaled_rates():
    cfg = load_config(
        "tiny",
        {
            "loss.perceptual.random_weights": True,
            "optim.lr_scaling": "linear",
            "optim.warmup_steps": 10,
            "data.batch_size": 20,
        },
    )
    trainer = Trainer(cfg, torch.device("cpu"))
    trainer.set_lr(4, 100)
    assert trainer.opts["G1"].param_groups[0]["lr"] == pytest.approx(1e-4 * 2 * 0.5)
    assert trainer.opts["D2"].param_groups[0]["lr"] == pytest.approx(4e-4 * 2 * 0.5)


def test_val_every_schedules_validation():
    s = Schedule(total=100, steps_per_epoch=1000, log_every=10, sample_every=10**6,
                 checkpoint_every=10**6, val_every_epoch=True, val_every=25)  # fmt: skip
    assert [k for k in range(1, 101) if s.due(k).validate] == [25, 50, 75, 100]
    assert s.due(25).sync


# ------------------------------------------------------------------ EMA
def test_ema_moves_toward_the_trained_weights_and_differs_from_them():
    torch.manual_seed(0)
    net = Generator(4, base_channels=4, max_channels=8, n_down=3, middle_dilations=[1])
    ema = GeneratorEMA({"G1": net}, decay=0.9)
    start = [p.clone() for p in ema.models["G1"].parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update({"G1": net})
    d0 = ema.current_decay()
    assert ema.updates == 1 and d0 == pytest.approx(2 / 11)
    first = ema.models["G1"].encoder[0][0].weight
    assert torch.allclose(first, start[0] + (1 - 1 / 10))  # decay 1/10 on the first update
    for _ in range(50):
        ema.update({"G1": net})
    for p_ema, p_raw, p0 in zip(
        ema.models["G1"].parameters(), net.parameters(), start, strict=True
    ):
        assert not torch.equal(p_ema, p_raw)
        assert (p_ema - p_raw).abs().max() < (p0 - p_raw).abs().max()


# ------------------------------------------------------------------ presets and configs
def test_paper_preset_keeps_every_option_off():
    cfg = load_config("paper")
    assert cfg["model"]["composite"] is False and cfg["model"]["d_spectral_norm"] is False
    assert cfg["model"]["prior"] == "none" and cfg["data"]["on_device"] is False
    assert cfg["loss"]["hole_weight"] == 1.0 and cfg["train"]["ema"] == 0.0
    assert cfg["optim"]["warmup_steps"] == 0 and cfg["optim"]["decay"] == "none"
    assert cfg["optim"]["lr_scaling"] == "none"
    assert cfg["data"]["augment"] == {"hflip": False, "mask_dilate": 0, "mask_erode": 0}
    assert (cfg["optim"]["lr_g"], cfg["optim"]["lr_d"], cfg["data"]["batch_size"]) == (
        1e-4,
        4e-4,
        10,
    )


def test_fast_preset_turns_the_options_on():
    cfg = load_config("fast")
    assert cfg["model"]["composite"] and cfg["model"]["d_spectral_norm"]
    assert cfg["loss"]["hole_weight"] > 1 and 0 < cfg["train"]["ema"] < 1
    assert cfg["data"]["augment"]["hflip"] and cfg["optim"]["decay"] == "cosine"
    assert cfg["model"]["prior"] == "diffusion" and cfg["data"]["on_device"] == "auto"


def test_configs_without_the_new_keys_read_as_the_paper():
    cfg = load_config("paper")
    old = json.loads(json.dumps(cfg))
    for dotted in ADDED_KEYS:
        *parents, leaf = dotted.split(".")
        node = old
        for p in parents:
            node = node[p]
        node.pop(leaf)
    old["data"].pop("augment")
    assert validate(old) == cfg


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def fast_micro(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "fast_micro.yaml"
    path.write_text(yaml.safe_dump(FAST_MICRO))
    return path


def test_fast_options_resume_exactly_and_inference_uses_the_ema(fast_micro, tmp_path):
    data = write_toy_shards(tmp_path / "toy", {"train": 6, "val": 2}, shard_size=2)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _train(data, straight, fast_micro, "--max-steps", "4").exit_code == 0
    assert _train(data, resumed, fast_micro, "--max-steps", "2").exit_code == 0
    r = _train(data, resumed, fast_micro, "--max-steps", "4", "--resume")
    assert r.exit_code == 0, r.output
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    for group in ("models", "ema"):
        for net, state in a[group].items():
            if net == "updates":
                assert state == b[group][net] == 4
                continue
            for k, v in state.items():
                assert torch.equal(v, b[group][net][k]), f"{group}.{net}.{k}"
    # the EMA is not the trained weights, and load_generators returns the EMA
    key = "encoder.0.0.weight"
    assert not torch.equal(a["ema"]["G1"][key], a["models"]["G1"][key])
    g1, g2, _ = load_generators(straight / "checkpoints" / "last.pt")
    assert torch.equal(g1.state_dict()[key], a["ema"]["G1"][key])
    # validation every 2 steps, masked PSNR first
    lines = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    val = [x for x in lines if x["kind"] == "val"]
    assert [x["step"] for x in val] == [2, 3, 4] or [x["step"] for x in val] == [2, 4]
    assert {"psnr_masked_composite", "psnr_masked_input"} <= val[-1].keys()
    train = [x for x in lines if x["kind"] == "train"]
    assert train[0]["lr_factor"] == pytest.approx(0.5)  # warm-up: step 1 of 2


def test_validation_scores_the_masked_region(tmp_path):
    cfg = load_config("tiny", {"loss.perceptual.random_weights": True})
    trainer = Trainer(cfg, torch.device("cpu"))
    inp, mask, target = _hole(2, 256)
    scores = trainer.validate([{"input": inp, "mask": mask, "target": target}])
    x = (inp + 1) / 2
    t = (target + 1) / 2
    m = mask.expand_as(x) > 0
    want_in = (
        sum(10 * math.log10(1 / ((x[i][m[i]] - t[i][m[i]]) ** 2).mean().item()) for i in range(2))
        / 2
    )
    assert scores["psnr_masked_input"] == pytest.approx(want_in, abs=1e-4)
    with torch.no_grad():
        from fdsgan_train.train import predict

        _, s2 = predict(trainer.nets["G1"].eval(), trainer.nets["G2"].eval(), inp, mask)
    c = (composite(s2.clamp(-1, 1), inp, mask) + 1) / 2
    want = (
        sum(10 * math.log10(1 / ((c[i][m[i]] - t[i][m[i]]) ** 2).mean().item()) for i in range(2))
        / 2
    )
    assert scores["psnr_masked_composite"] == pytest.approx(want, abs=1e-3)
