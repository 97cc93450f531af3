"""The occlusion segmenter: learning, metrics, mask-free inference, checkpoint kinds."""

from __future__ import annotations

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


def test_segmenter_learns_a_drawn_shape_on_demo_faces(toy):
    torch.manual_seed(0)
    plain = {f"segment.augment.{k}": 0 for k in ("scale", "shift", "rotate", "colour")}
    plain |= {f"segment.augment.{k}": 0 for k in ("blur", "jpeg", "noise")}
    cfg = load_config("segmenter", SMALL | plain | {"segment.lr": 3.0e-3})
    trainer = SegmentTrainer(cfg, torch.device("cpu"))
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
