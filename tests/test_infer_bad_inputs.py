"""fdsgan-infer and fdsgan-eval on hostile inputs: one line, exit code 2, nothing written."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from test_data_bad_shards import png_header  # pytest puts tests/ on sys.path

from fdsgan_train.checkpoint import save_checkpoint
from fdsgan_train.cli_eval import eval_main, infer_main


class _Blocked:
    """Pickles as a call of ``os.getcwd``: a global the safe loader refuses."""

    def __reduce__(self):
        return (os.getcwd, ())


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_checkpoint):
    """Damaged checkpoints by name."""
    root = tmp_path_factory.mktemp("bad-ckpt")
    state = torch.load(tiny_checkpoint, weights_only=True)
    state.pop("format")
    for t in state["models"]["G2"].values():
        if t.is_floating_point():
            t.fill_(float("nan"))
    save_checkpoint(root / "nan.pt", state)
    torch.save({"format": "fdsgan-train/1", "x": _Blocked()}, root / "pickle.pt")
    (root / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    return root


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A face photo and its mask (ellipse over the mouth), as files."""
    from skimage import data as skdata

    root = tmp_path_factory.mktemp("photo")
    face = np.ascontiguousarray(skdata.astronaut()[:430, 40:500])
    mask = np.zeros(face.shape[:2], np.uint8)
    cv2.ellipse(mask, (184, 140), (32, 15), 5, 0, 360, 255, -1)
    Image.fromarray(face).save(root / "astro.png")
    Image.fromarray(mask).save(root / "astro.mask.png")
    return root / "astro.png", root / "astro.mask.png"


def _one_line_error(res, *texts: str) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert all(t in lines[0] for t in texts), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "name, text",
    [
        ("nan.pt", "holds NaN or infinite weights"),
        ("pickle.pt", "cannot read checkpoint"),
        ("random.pt", "cannot read checkpoint"),
    ],
)
def test_bad_checkpoints_write_nothing(checkpoints, photo, tmp_path, run_cli, name, text):
    image, mask = photo
    ckpt = checkpoints / name
    out = tmp_path / "out.png"
    res = run_cli(infer_main, checkpoint=ckpt, image=image, mask=mask, out=out)
    line = _one_line_error(res, text, str(ckpt))
    assert "weights_only" not in line
    assert not out.exists()
    data = tmp_path / "no-data"
    res = run_cli(eval_main, checkpoint=ckpt, data=data, out=tmp_path / "eval")
    assert "weights_only" not in _one_line_error(res, text)


def test_photo_and_mask_bombs_are_refused_from_the_header(
    photo, tiny_checkpoint, tmp_path, run_cli
):
    image, mask = photo
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30000, 30000, 2))
    mask_bomb = tmp_path / "bomb.mask.png"
    mask_bomb.write_bytes(png_header(30000, 30000, 0))
    out = tmp_path / "o.png"
    res = run_cli(infer_main, checkpoint=tiny_checkpoint, image=bomb, mask=mask, out=out)
    _one_line_error(res, "bomb.png: image too large")
    res = run_cli(infer_main, checkpoint=tiny_checkpoint, image=image, mask=mask_bomb, out=out)
    _one_line_error(res, "astro.png: mask bomb.mask.png is too large")
    assert not out.exists()


def test_a_fifo_in_a_photo_folder_is_not_read(photo, tiny_checkpoint, tmp_path, run_cli):
    image, mask = photo
    folder = tmp_path / "in"
    folder.mkdir()
    for p in (image, mask):
        (folder / p.name).write_bytes(p.read_bytes())
    os.mkfifo(folder / "fifo.jpg")
    os.mkfifo(folder / "fifo.mask.png")
    res = run_cli(
        infer_main, checkpoint=tiny_checkpoint, image=folder, mask=folder, out=tmp_path / "out"
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astro.png"]
