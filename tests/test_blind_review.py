"""tools/blind_review.py: a shuffled sheet of real photos and built samples, with its key apart.

Real photos here are the bundled demo faces with an ellipse marked as their occluder (the tool
reads the ``fdsgan-eval --real`` layout); the samples come from a small demo build.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from occlusion_synth.faces import demo_faces
from occlusion_synth.shards import iter_samples

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import blind_review  # noqa: E402


def test_partners_frame_every_occluder_inside_a_photo() -> None:
    """Each sample gets a real partner whose photo shows its whole occluder when one can."""
    full = np.ones((256, 256), bool)
    top = np.zeros((256, 256), bool)
    top[:128] = True
    low_mask = np.zeros((256, 256), np.uint8)
    low_mask[200:240, 100:150] = 255  # only the full-frame photo shows it
    high_mask = np.zeros((256, 256), np.uint8)
    high_mask[20:60, 100:150] = 255  # either photo shows it
    for seed in range(5):
        order = blind_review.partners([low_mask, high_mask], [top, full], random.Random(seed))
        assert order[0] == 1 and order[1] == 0


def _real_folder(tmp_path: Path, n: int) -> list[str]:
    (tmp_path / "real" / "masks").mkdir(parents=True)
    names = []
    for src in demo_faces():
        img = np.array(Image.open(src.path).convert("RGB"))
        if len(names) == n or np.array_equal(img[..., 0], img[..., 1]):
            continue  # the photos are read as colour photos: a grey one is refused
        h, w = img.shape[:2]
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, int(h * 0.62)), (w // 8, h // 14), 0, 0, 360, 255, -1)
        name = src.id.split(":")[1]
        Image.fromarray(img).save(tmp_path / "real" / f"{name}.jpg", quality=95)
        Image.fromarray(mask).save(tmp_path / "real" / "masks" / f"{name}.mask.png")
        names.append(name)
    return names


def test_sheet_and_key(tmp_path, monkeypatch, demo_build_options) -> None:
    from occlusion_synth.build import run_build

    names = _real_folder(tmp_path, 2)
    run_build(
        demo_build_options(tmp_path / "built", tmp_path / "lm", n=6, categories="medical_mask")
    )
    sheet, key = tmp_path / "review" / "sheet.png", tmp_path / "key.json"
    argv = ["blind_review.py", "--real", str(tmp_path / "real"), "--names", ",".join(names)]
    argv += ["--build", f"{tmp_path / 'built'}:2", "--sheet", str(sheet), "--key", str(key)]
    monkeypatch.setattr(sys, "argv", argv)
    blind_review.main()
    labels = json.loads(key.read_text())
    assert sorted(labels) == sorted(f"tile {i}" for i in range(1, 5))
    kinds = sorted(v.split(":")[0] for v in labels.values())
    assert kinds == ["real", "real", "synthetic", "synthetic"]
    assert {f"real:{n}" for n in names} <= set(labels.values())
    assert len(set(labels.values())) == 4  # each occluder once
    width, height = Image.open(sheet).size
    assert width == blind_review.COLS * blind_review.TILE and height > blind_review.TILE
    assert not (sheet.parent / "key.json").exists()  # the key is not beside the sheet
    # ... and each face once (the build has each of its 3 faces twice)
    by_key = {s.key: s.meta["source_id"] for s in iter_samples(tmp_path / "built")}
    for seed in range(8):
        monkeypatch.setattr(sys, "argv", [*argv, "--seed", str(seed)])
        blind_review.main()
        picked = json.loads(key.read_text()).values()
        faces = [by_key[v.rsplit("/", 1)[1]] for v in picked if v.startswith("synthetic")]
        assert len(faces) == 2 and len(set(faces)) == 2, seed


def test_too_few_samples_is_one_line(tmp_path, monkeypatch, demo_build_options) -> None:
    from occlusion_synth.build import run_build

    names = _real_folder(tmp_path, 2)
    run_build(
        demo_build_options(tmp_path / "built", tmp_path / "lm", n=2, categories="medical_mask")
    )
    argv = ["blind_review.py", "--real", str(tmp_path / "real"), "--names", ",".join(names)]
    argv += ["--build", f"{tmp_path / 'built'}:1", "--sheet", str(tmp_path / "s.png")]
    monkeypatch.setattr(sys, "argv", [*argv, "--key", str(tmp_path / "k.json")])
    with pytest.raises(SystemExit, match="1 samples for 2 real photos"):
        blind_review.main()


def test_a_photo_without_a_face_is_one_line(tmp_path, monkeypatch) -> None:
    (tmp_path / "real" / "masks").mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 255, (120, 100, 3), np.uint8)
    Image.fromarray(noise).save(tmp_path / "real" / "blank.jpg")
    Image.fromarray(np.zeros((120, 100), np.uint8)).save(
        tmp_path / "real" / "masks" / "blank.mask.png"
    )
    argv = ["blind_review.py", "--real", str(tmp_path / "real"), "--names", "blank,gone"]
    argv += ["--build", "x:1", "--sheet", str(tmp_path / "s.png"), "--key", str(tmp_path / "k")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit, match=r"^blank.jpg: no face found"):
        blind_review.main()


def test_build_spec_takes_only_the_named_categories(tmp_path, monkeypatch, demo_build_options):
    """``DIR:N:CATS`` picks only samples whose occluders are all of CATS (a mixed build's
    mask samples)."""
    from occlusion_synth.build import run_build

    assert blind_review._build_spec("/a/b:8") == ("/a/b", "8", None)
    assert blind_review._build_spec("/a/b:8:x+y") == ("/a/b", "8", {"x", "y"})
    names = _real_folder(tmp_path, 2)
    run_build(
        demo_build_options(
            tmp_path / "built", tmp_path / "lm", n=12, categories="medical_mask:1,sunglasses:1"
        )
    )
    cats = {s.key: s.meta["categories"] for s in iter_samples(tmp_path / "built")}
    assert set(cats.values()) == {"medical_mask", "sunglasses"}
    key = tmp_path / "key.json"
    argv = ["blind_review.py", "--real", str(tmp_path / "real"), "--names", ",".join(names)]
    argv += ["--build", f"{tmp_path / 'built'}:2:sunglasses", "--key", str(key)]
    for seed in range(4):
        sheet = str(tmp_path / "s.png")
        monkeypatch.setattr(sys, "argv", [*argv, "--sheet", sheet, "--seed", str(seed)])
        blind_review.main()
        labels = json.loads(key.read_text()).values()
        picked = [v.rsplit("/", 1)[1] for v in labels if v.startswith("synthetic:")]
        assert [cats[k] for k in picked] == ["sunglasses", "sunglasses"]
