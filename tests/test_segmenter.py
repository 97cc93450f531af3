"""The occlusion segmenter: learning, metrics, mask-free inference, checkpoint kinds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from fdsgan_train import checkpoint as ckpt_io
from fdsgan_train.cli import train_main
from fdsgan_train.cli_eval import eval_main, infer_main
from fdsgan_train.config import load_config
from fdsgan_train.data import shard_paths, train_loader
from fdsgan_train.segment_eval import mask_scores
from fdsgan_train.segment_train import SegmentTrainer
from fdsgan_train.segmenter import augment, build_segmenter, load_backbone
from fdsgan_train.toy_data import write_toy_shards
from occlusion_synth.errors import UserError

SMALL = {
    "segment.size": 64,
    "segment.base_channels": 16,
    "data.batch_size": 8,
    "data.num_workers": 0,
    "train.device": "cpu",
    "train.amp": False,
    "segment.lr": 1.0e-2,
    "optim.warmup_steps": 0,
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_shards(tmp_path_factory.mktemp("toy"), {"train": 32, "val": 8, "test": 8})


@pytest.fixture(scope="module")
def seg_checkpoint(toy, tmp_path_factory):
    """A segmenter trained a few steps through fdsgan-train --config segmenter."""
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("segrun")
    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    args = ["--config", "segmenter", "--data", str(toy), "--run-dir", str(run)]
    res = CliRunner().invoke(train_main, [*args, "--max-steps", "6", *sets])
    assert res.exit_code == 0, res.output
    assert "validation IoU" in res.output
    assert (run / "tb").is_dir() and (run / "metrics.jsonl").is_file()
    return run / "checkpoints" / "last.pt"


@pytest.mark.parametrize(("upsample", "amp"), [("bilinear", False), ("nearest", True)])
def test_segmenter_learns_a_drawn_shape_on_demo_faces(toy, upsample, amp):
    torch.manual_seed(0)
    plain = {f"segment.augment.{k}": 0 for k in ("scale", "shift", "rotate", "colour")}
    plain |= {f"segment.augment.{k}": 0 for k in ("blur", "jpeg", "noise")}
    mode = {"segment.upsample": upsample, "train.amp": amp}
    cfg = load_config("segmenter", SMALL | plain | mode | {"segment.lr": 3.0e-3})
    trainer = SegmentTrainer(cfg, torch.device("cpu"))
    assert trainer.amp is amp
    batches = train_loader(shard_paths(toy, "train"), cfg, 0, 0, 1, False)
    fixed = next(batches)

    def iou() -> float:
        image, mask = trainer.prepare(fixed, None)
        trainer.net.eval()
        with torch.no_grad():
            pred = trainer.net(image) > 0
        trainer.net.train()
        t = mask > 0.5
        return float(((pred & t).sum((1, 2, 3)) / (pred | t).sum((1, 2, 3))).mean())

    start = iou()
    for step in range(60):
        trainer.step(next(batches), step)
    end = iou()
    assert start < 0.4
    assert end > 0.6 and end > start + 0.3


def test_amp_auto_is_bf16_on_an_amx_cpu_for_the_segmenter_only(tmp_path, monkeypatch):
    from fdsgan_train import train

    amx, plain = tmp_path / "amx", tmp_path / "plain"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert train.cpu_has_amx(str(amx)) and not train.cpu_has_amx(str(plain))
    assert not train.cpu_has_amx(str(tmp_path / "missing"))
    cpu, cfg = torch.device("cpu"), load_config("segmenter")
    assert cfg["train"]["amp"] == "auto"
    for has_amx in (True, False):
        monkeypatch.setattr(train, "cpu_has_amx", lambda has_amx=has_amx: has_amx)
        assert train.amp_settings(cfg, cpu, cpu_bf16=True) == (has_amx, torch.bfloat16)
        assert train.amp_settings(cfg, cpu)[0] is False  # the GAN: CUDA only
        assert SegmentTrainer(cfg, cpu).amp is has_amx


def test_old_segmenter_configs_read_with_bilinear_upsampling():
    from fdsgan_train.config import validate

    cfg = load_config("segmenter")
    assert cfg["segment"]["upsample"] == "nearest"
    old = {**cfg, "segment": {k: v for k, v in cfg["segment"].items() if k != "upsample"}}
    assert validate(old)["segment"]["upsample"] == "bilinear"
    nets = [
        build_segmenter(load_config("segmenter", {"segment.upsample": m}))
        for m in ("bilinear", "nearest")
    ]
    nets[1].load_state_dict(nets[0].state_dict())  # the same weights: only the x2 differs
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a, b = (net.eval()(x) for net in nets)
    assert a.shape == b.shape == (1, 1, 64, 64) and not torch.allclose(a, b)


def test_widths_shape_the_unet_and_old_configs_keep_their_network():
    from fdsgan_train.config import validate

    cfg = load_config("segmenter")
    net = build_segmenter(cfg)
    assert net.encoder.channels == [3, 16, 32, 64, 128]  # widths [1, 2, 4, 8] x 16
    assert net.head.in_channels == 16  # full_res_channels
    added = ("widths", "full_res_channels")
    old = {**cfg, "segment": {k: v for k, v in cfg["segment"].items() if k not in added}}
    old_net = build_segmenter(validate(old))
    assert old_net.encoder.channels == [3, 16, 32, 48, 64] and old_net.head.in_channels == 8
    # a checkpoint of the first presets loads into the network its config rebuilds
    old_net.load_state_dict(build_segmenter(validate(old)).state_dict())
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert net.eval()(x).shape == old_net.eval()(x).shape == (2, 1, 64, 64)
    with pytest.raises(UserError, match="segment.widths must be a list of 4"):
        load_config("segmenter", {"segment.widths": [1, 2, 4]})


def test_metrics_on_hand_made_masks_with_known_iou():
    a = np.zeros((40, 40), np.uint8)
    b = np.zeros((40, 40), np.uint8)
    a[0:20, 0:20] = 255  # 400 px
    b[10:20, 0:20] = 255  # 200 px, inside a
    s = mask_scores(b, a)
    assert s["iou"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(2 * 200 / 600)
    c = np.zeros_like(a)
    c[0:20, 10:30] = 255  # overlaps a in 200 px; union 600
    assert mask_scores(c, a)["iou"] == pytest.approx(1 / 3)
    assert mask_scores(a, a) == {"iou": 1.0, "f1": 1.0, "boundary_f": 1.0}
    assert mask_scores(np.zeros_like(a), np.zeros_like(a))["iou"] == 1.0
    assert mask_scores(np.zeros_like(a), a)["iou"] == 0.0
    # a one-pixel shift keeps the boundary within the tolerance; a 10 px one does not
    inner = np.zeros_like(a)
    inner[8:28, 8:28] = 255
    shifted = np.roll(inner, 1, axis=1)
    assert mask_scores(shifted, inner)["boundary_f"] == pytest.approx(1.0)
    far = np.roll(inner, 10, axis=0)
    assert mask_scores(far, inner)["boundary_f"] < 0.5
    # only valid pixels count: the disagreement outside them is ignored
    valid = np.zeros_like(a)
    valid[:, :10] = 1
    assert mask_scores(c, a, valid)["iou"] == 0.0
    assert mask_scores(a, c, valid == 0)["iou"] == pytest.approx(200 / 400)


def test_augment_keeps_image_and_mask_together():
    gen = torch.Generator().manual_seed(1)
    image = torch.zeros(4, 3, 64, 64)
    mask = torch.zeros(4, 1, 64, 64)
    image[:, :, 20:40, 10:30] = 1.0
    mask[:, :, 20:40, 10:30] = 1.0
    aug = load_config("segmenter")["segment"]["augment"]
    geo = {k: (v if k in ("hflip", "scale", "shift", "rotate") else 0) for k, v in aug.items()}
    img2, mask2 = augment(image.clone(), mask.clone(), geo, gen)
    # the bright square moved with the mask: it is where the mask is
    for i in range(4):
        inside = img2[i, 0][mask2[i, 0] > 0.9].mean()
        outside = img2[i, 0][mask2[i, 0] < 0.1].mean()
        assert inside > 0.8 and outside < 0.1
    img3, _ = augment(image.clone(), mask.clone(), aug, torch.Generator().manual_seed(2))
    assert img3.min() >= -1 and img3.max() <= 1 and torch.isfinite(img3).all()


def test_backbone_weights_load_from_a_local_file_and_refuse_a_foreign_one(tmp_path):
    cfg = load_config("segmenter", {"segment.base_channels": 8})
    src = build_segmenter(cfg)
    torch.save(src.state_dict(), tmp_path / "seg.pt")
    net = build_segmenter(cfg)
    load_backbone(net, tmp_path / "seg.pt")
    for k, v in src.encoder.state_dict().items():
        assert torch.equal(net.encoder.state_dict()[k], v)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="does not fit"):
        load_backbone(net, tmp_path / "other.pt")


def test_eval_on_a_segmenter_checkpoint(seg_checkpoint, toy, tmp_path, run_cli):
    res = run_cli(eval_main, checkpoint=seg_checkpoint, data=toy, out=tmp_path / "ev")
    assert res.exit_code == 0, res.output
    text = (tmp_path / "ev" / "segmenter_summary.md").read_text()
    assert "per occluder category" in text and "rectangle" in text
    import pandas as pd

    frame = pd.read_csv(tmp_path / "ev" / "segmenter_metrics.csv")
    assert len(frame) == 8 and frame["iou"].between(0, 1).all()


def _astronaut():
    photo = np.ascontiguousarray(skdata.astronaut()[:430, 40:500])
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(mask, (184, 140), (32, 15), 5, 0, 360, 255, -1)
    return photo, mask


def test_eval_real_photos_and_infer_without_a_mask(
    seg_checkpoint, tiny_checkpoint, toy, tmp_path, run_cli
):
    photo, mask = _astronaut()
    real = tmp_path / "real"
    (real / "masks").mkdir(parents=True)
    Image.fromarray(photo).save(real / "astro.jpg")
    Image.fromarray(mask).save(real / "masks" / "astro.mask.png")
    res = run_cli(eval_main, checkpoint=seg_checkpoint, data=toy, real=real, out=tmp_path / "ev")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ev" / "real_sheet.png").is_file()
    assert "astro" in (tmp_path / "ev" / "segmenter_summary.md").read_text()

    out = tmp_path / "out" / "astro.png"
    res = run_cli(
        infer_main,
        checkpoint=tiny_checkpoint,
        segmenter=seg_checkpoint,
        image=real / "astro.jpg",
        mask_dilate=3,
        out=out,
    )
    assert res.exit_code == 0, res.output
    predicted = np.asarray(Image.open(out.with_name("astro.mask.png")))
    result = np.asarray(Image.open(out))
    assert predicted.shape == photo.shape[:2] and result.shape == photo.shape
    # only the predicted mask's pixels may change (JPEG decode of the photo as reference)
    src = np.asarray(Image.open(real / "astro.jpg"))
    assert np.array_equal(result[predicted == 0], src[predicted == 0])
    # rerunning with the written mask gives the same result
    again = tmp_path / "again.png"
    res = run_cli(
        infer_main,
        checkpoint=tiny_checkpoint,
        image=real / "astro.jpg",
        mask=out.with_name("astro.mask.png"),
        out=again,
    )
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(again)), result)


def test_wrong_kind_of_checkpoint_is_one_clear_line(
    seg_checkpoint, tiny_checkpoint, tmp_path, run_cli
):
    photo, mask = _astronaut()
    Image.fromarray(photo).save(tmp_path / "a.png")
    res = run_cli(
        infer_main,
        checkpoint=tiny_checkpoint,
        segmenter=tiny_checkpoint,
        image=tmp_path / "a.png",
        out=tmp_path / "o.png",
    )
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "de-occlusion" in lines[0] and "--checkpoint" in lines[0]
    res = run_cli(
        infer_main,
        checkpoint=seg_checkpoint,
        segmenter=seg_checkpoint,
        image=tmp_path / "a.png",
        out=tmp_path / "o.png",
    )
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "segmenter checkpoint" in lines[0] and "--segmenter" in lines[0]
    with pytest.raises(UserError, match="give it to --segmenter"):
        ckpt_io.load_checkpoint(seg_checkpoint)


def test_infer_needs_a_mask_or_a_segmenter(tiny_checkpoint, tmp_path, run_cli):
    photo, _ = _astronaut()
    Image.fromarray(photo).save(tmp_path / "a.png")
    res = run_cli(infer_main, checkpoint=tiny_checkpoint, image=tmp_path / "a.png", out=tmp_path)
    assert res.exit_code == 2 and "--segmenter" in res.output


def test_segmenter_resume_continues_the_run(toy, tmp_path):
    from click.testing import CliRunner

    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    run = tmp_path / "run"
    common = ["--data", str(toy), "--run-dir", str(run), *sets]
    res = CliRunner().invoke(train_main, ["--config", "segmenter", "--max-steps", "2", *common])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(train_main, ["--resume", "--max-steps", "4", *common])
    assert res.exit_code == 0, res.output
    ckpt = ckpt_io.load_checkpoint(run / "checkpoints" / "last.pt", kind="segmenter")
    assert ckpt["step"] == 4 and ckpt["kind"] == "segmenter"


def test_train_ema_is_validated_saved_and_used_by_inference(toy, tmp_path):
    from click.testing import CliRunner

    from fdsgan_train.segmenter import load_segmenter

    sets = [f"--set={k}={v}" for k, v in (SMALL | {"train.ema": 0.9}).items()]
    run = tmp_path / "run"
    common = ["--data", str(toy), "--run-dir", str(run), *sets]
    res = CliRunner().invoke(train_main, ["--config", "segmenter", "--max-steps", "3", *common])
    assert res.exit_code == 0, res.output
    last = run / "checkpoints" / "last.pt"
    ckpt = ckpt_io.load_checkpoint(last, kind="segmenter")
    assert ckpt["ema"]["updates"] == 3
    ema, raw = ckpt["ema"]["S"], ckpt["models"]["S"]
    name = "head.weight"
    assert not torch.equal(ema[name], raw[name])  # an average, not a copy
    net, _ = load_segmenter(last)
    assert torch.equal(net.state_dict()[name], ema[name])
    res = CliRunner().invoke(train_main, ["--resume", "--max-steps", "5", *common])
    assert res.exit_code == 0, res.output
    assert ckpt_io.load_checkpoint(last, kind="segmenter")["ema"]["updates"] == 5


def test_screen_cli_lists_every_demo_face(seg_checkpoint, tiny_checkpoint, tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from occlusion_synth.cli import main

    out, sheet = tmp_path / "screen.csv", tmp_path / "flagged.png"
    args = ["screen", "--faces", "demo", "--out", str(out), "--sheet", str(sheet)]
    res = CliRunner().invoke(main, [*args, "--segmenter", str(seg_checkpoint), "--threshold", "0"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["source", "split", "occluded", "flagged", "reason"]
    assert sorted(table["source"]) == ["demo:astronaut", "demo:camera", "demo:grace_hopper"]
    assert (table["flagged"] == (table["occluded"] > 0)).all()
    assert sheet.is_file() == bool(table["flagged"].any())
    res = CliRunner().invoke(main, [*args, "--segmenter", str(tiny_checkpoint)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_harvest_auto_masks_from_a_segmenter(seg_checkpoint, tmp_path, monkeypatch):
    """``occsynth occluders harvest --masks auto --segmenter``: a photo without a mask file
    gets the segmenter's mask (the network's output is replaced by a mask-shaped region of
    the frame, so that the harvest does not depend on a few training steps) and its
    sidecar says ``auto_masked``."""
    import json

    from click.testing import CliRunner

    from fdsgan_train.segmenter import Segmenter
    from occlusion_synth.cli import main

    lower_face = np.array([(80, 185), (92, 140), (162, 140), (177, 185), (127, 222)], np.int32)

    def probabilities(self, frames, batch_size=16):
        out = []
        for frame in frames:
            prob = np.zeros(frame.shape[:2], np.float32)
            cv2.fillPoly(prob, [lower_face * frame.shape[0] // 256], 1.0)
            out.append(prob)
        return out

    monkeypatch.setattr(Segmenter, "probabilities", probabilities)
    photo, _ = _astronaut()
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(photo).save(src / "astro.jpg")
    lib = tmp_path / "lib"
    args = ["occluders", "harvest", "--from", str(src), "--category", "medical_mask"]
    args += ["--out", str(lib), "--masks", "auto", "--segmenter", str(seg_checkpoint)]
    res = CliRunner().invoke(main, [*args, "--device", "cpu", "--matting", "guided"])
    assert res.exit_code == 0, res.output
    sidecars = sorted((lib / "medical_mask").glob("*.json"))
    assert len(sidecars) == 1
    meta = json.loads(sidecars[0].read_text())
    assert meta["harvest"]["auto_masked"] is True
    # without --segmenter a photo without a mask file is refused
    res = CliRunner().invoke(main, [*args[:-2], "--out", str(tmp_path / "lib2")])
    assert res.exit_code != 0


@pytest.mark.parametrize("target", ["object", "mask"])
def test_cached_split_matches_the_streamed_one(toy, target):
    """``data.on_device``: the cached split holds what the streaming path's resize gives,
    under the key of the ``segment.target`` member."""
    from fdsgan_train.data import decode, iter_raw_samples
    from fdsgan_train.device_data import device_batches
    from fdsgan_train.segment_train import load_cache
    from fdsgan_train.segmenter import resize

    paths = shard_paths(toy, "train")
    cache = load_cache(paths, 64, target=target)
    assert cache is not None and len(cache) == 32 and cache.input.dtype == torch.uint8
    key, members = next(iter(iter_raw_samples(paths[0])))
    ref = decode(key, members, paths[0])
    got = cache.batch(torch.tensor([0]))
    assert set(got) == {"input", target}
    want_image = resize(ref["input"][None], 64)
    want_mask = resize(ref[target][None], 64)
    assert (got["input"] - want_image).abs().max() <= 1.5 / 127.5
    assert (got[target] - want_mask).abs().max() <= 1 / 255
    cfg = load_config("segmenter", SMALL)
    batches = device_batches(cache, cfg, 0, 0, 1, 0)
    first = [next(batches)["input"] for _ in range(4)]  # one epoch: 4 batches of 8
    skipped = next(device_batches(cache, cfg, 0, 0, 1, 3))["input"]
    assert torch.equal(first[3], skipped)  # a resumed run skips batches exactly
    seen = torch.cat(first).flatten(1).sum(1).sort().values
    every = cache.batch(torch.arange(32))["input"].flatten(1).sum(1).sort().values
    assert torch.allclose(seen, every)  # each sample once


def test_time_budget_stops_the_run(toy, tmp_path):
    """``segment.minutes``: once the time is spent the run stops, validates and saves, and
    the checkpoint carries the time for a resumed run."""
    from click.testing import CliRunner

    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    run = tmp_path / "run"
    args = ["--config", "segmenter", "--data", str(toy), "--run-dir", str(run), *sets]
    res = CliRunner().invoke(train_main, [*args, "--set=segment.minutes=0.0001"])
    assert res.exit_code == 0, res.output
    assert "validation IoU" in res.output
    ckpt = ckpt_io.load_checkpoint(run / "checkpoints" / "last.pt", kind="segmenter")
    assert ckpt["step"] == 1 and ckpt["elapsed_s"] >= 0.006
    res = CliRunner().invoke(train_main, ["--resume", *args[2:]])
    assert res.exit_code == 0, res.output
    ckpt = ckpt_io.load_checkpoint(run / "checkpoints" / "last.pt", kind="segmenter")
    assert ckpt["step"] == 2  # the budget was spent: one step, then the stop


def test_outline_sheet_clips_the_true_outline_to_the_photo():
    from fdsgan_train.segment_eval import outlines

    frame = np.full((64, 64, 3), 128, np.uint8)
    true = np.zeros((64, 64), np.uint8)
    true[30:64, 10:50] = 255  # runs past the photo's bottom edge (rows 48..63 are filled)
    valid = np.zeros((64, 64), bool)
    valid[:48] = True
    img = outlines(frame, true, np.zeros_like(true), valid)
    green = (img[..., 1] == 220) & (img[..., 0] == 0)
    assert green[30:32, 12:48].all()  # the top edge is drawn
    assert green[34:44, 10].all()  # the sides are drawn down to the photo's edge
    assert not green[44:, 13:47].any()  # nothing along the photo's edge
    assert not green[48:].any()  # nor beyond it
    assert (img[50:, :, 0] < 128).all()  # outside the photo is darkened


class _Fixed:
    """A segmenter stand-in that predicts given masks (scoring is what is under test)."""

    def __init__(self, target: str, preds: list[np.ndarray]) -> None:
        self.config = {"segment": {"target": target}}
        self.preds = preds

    def masks(self, frames):
        return [self.preds.pop(0) > 0 for _ in frames]


def test_synthetic_scores_use_the_checkpoints_target():
    """A segmenter trained on ``object`` is scored against ``object_mask`` (falling back to
    the mask in older shards); one trained on ``mask`` against the mask."""
    from fdsgan_train.evaluate import EvalSample
    from fdsgan_train.segment_eval import TRUTH_NAMES, score_synthetic, summary_markdown, truth_of

    img = np.zeros((256, 256, 3), np.uint8)
    mask = np.zeros((256, 256), np.uint8)
    mask[60:160, 60:160] = 255  # 10,000 px
    obj = np.zeros_like(mask)
    obj[70:150, 70:150] = 255  # 6,400 px, inside the mask
    with_obj = EvalSample("a", "medical_mask", img, mask, img, obj)
    old = EvalSample("b", "medical_mask", img, mask, img)
    assert truth_of(with_obj, "object") is obj and truth_of(old, "object") is mask
    assert truth_of(with_obj, "mask") is mask

    rows = score_synthetic([with_obj, old], _Fixed("object", [obj, obj]))
    assert rows[0]["iou"] == pytest.approx(1.0) and rows[1]["iou"] == pytest.approx(0.64)
    assert rows[0]["coverage"] == pytest.approx(6400 / 65536)
    rows = score_synthetic([with_obj], _Fixed("mask", [obj]))
    assert rows[0]["iou"] == pytest.approx(0.64)

    import pandas as pd

    text = summary_markdown(pd.DataFrame(rows), Path("c.pt"), Path("d"), "test", None, [], "object")
    assert TRUTH_NAMES["object"] in text
