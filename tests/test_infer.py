"""fdsgan-infer on a demo face: alignment, paste-back, only masked pixels change."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from fdsgan_train.cli_eval import infer_main
from fdsgan_train.infer import align_photo, pair_inputs, paste_back


def _photo_and_mask():
    """The astronaut, cropped to a non-square size, with an ellipse drawn over the mouth."""
    photo = np.ascontiguousarray(skdata.astronaut()[:430, 40:500])  # 460 x 430
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(mask, (184, 140), (32, 15), 5, 0, 360, 255, -1)
    return photo, mask


def _celeba_shaped():
    """A tight 178x218 crop of the astronaut (CelebA's aligned size), ellipse over the mouth.

    The 256x256 frame reaches past this photo on every side.
    """
    photo = np.ascontiguousarray(skdata.astronaut()[0:218, 136:314])
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(mask, (87, 140), (26, 11), 0, 0, 360, 255, -1)
    return photo, mask


def _save(folder, photo, mask, name="astro"):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(folder / f"{name}.png")
    Image.fromarray(mask).save(folder / f"{name}.mask.png")
    return folder / f"{name}.png", folder / f"{name}.mask.png"


def _read_result(path, photo, mask):
    """The result PNG, checked to be the photo's size and equal to it outside the mask."""
    result = np.asarray(Image.open(path))
    assert result.shape == photo.shape
    assert np.array_equal(result[mask == 0], photo[mask == 0])
    return result


@pytest.mark.parametrize("make", [_photo_and_mask, _celeba_shaped], ids=["loose", "celeba"])
def test_infer_repaints_the_masked_pixels_only(make, tiny_checkpoint, tmp_path, run_cli):
    photo, mask = make()
    img, msk = _save(tmp_path, photo, mask)
    out = tmp_path / "result.png"
    res = run_cli(infer_main, checkpoint=tiny_checkpoint, image=img, mask=msk, out=out)
    assert res.exit_code == 0, res.output
    result = _read_result(out, photo, mask)
    changed = np.any(result != photo, axis=2)
    assert changed[mask > 0].mean() > 0.95  # the random model changes (almost) every one


def test_alignment_round_trip_puts_the_face_back_where_it_was():
    photo, mask = _photo_and_mask()
    aligned = align_photo(photo, mask)
    assert aligned.image.shape == (256, 256, 3) and aligned.mask.shape == (256, 256)
    # the warped mask covers the mouth region of the canonical frame (mouth y ~ 175)
    ys, xs = np.nonzero(aligned.mask)
    assert 150 < ys.mean() < 200 and 100 < xs.mean() < 160
    # pasting the aligned image itself back reproduces the photo inside the mask
    back, outside = paste_back(photo, mask, aligned.image, aligned.matrix)
    assert outside == 0
    err = np.abs(back.astype(int) - photo.astype(int))[mask > 0]
    assert err.mean() < 6
    assert np.array_equal(back[mask == 0], photo[mask == 0])


def test_infer_folders_pair_by_stem(tiny_checkpoint, tmp_path, run_cli):
    photo, mask = _photo_and_mask()
    _save(tmp_path / "in", photo, mask, "a")
    Image.fromarray(photo[:, ::-1]).save(tmp_path / "in" / "b.png")  # no mask: not processed
    masks = tmp_path / "masks"
    masks.mkdir()
    (tmp_path / "in" / "a.mask.png").rename(masks / "a.png")
    res = run_cli(
        infer_main,
        checkpoint=tiny_checkpoint,
        image=tmp_path / "in",
        mask=masks,
        out=tmp_path / "out",
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_infer_errors_are_one_line_with_exit_code_2(tiny_checkpoint, tmp_path, run_cli):
    photo, mask = _photo_and_mask()
    img, _ = _save(tmp_path, photo, mask)
    small = tmp_path / "small.png"
    Image.fromarray(mask[::2, ::2]).save(small)
    noface = tmp_path / "flat.png"
    Image.fromarray(np.full((300, 280, 3), (90, 120, 150), np.uint8)).save(noface)
    flat_mask = tmp_path / "flat.mask.png"
    Image.fromarray(np.full((300, 280), 255, np.uint8)).save(flat_mask)
    cases = [
        (img, small, "must be the size of the photo"),
        (noface, flat_mask, "no face found"),
    ]
    for image, m, text in cases:
        res = run_cli(
            infer_main, checkpoint=tiny_checkpoint, image=image, mask=m, out=tmp_path / "o.png"
        )
        assert res.exit_code == 2, res.output
        assert text in res.output and len(res.output.strip().splitlines()) == 1


def test_infer_on_a_development_photo(tiny_checkpoint, shared_data, tmp_path, run_cli):
    photo_path = sorted((shared_data / "faces_misc").glob("*.jpg"))[0]
    from fdsgan_train.infer import align_photo as _align
    from fdsgan_train.infer import read_photo

    photo = read_photo(photo_path)
    # draw the mask over the mouth found by the aligner: canonical mouth box mapped back
    probe = _align(photo, np.zeros(photo.shape[:2], np.uint8))
    inv = cv2.invertAffineTransform(probe.matrix)
    centre = inv @ np.array([127.0, 175.0, 1.0])
    scale = float(np.sqrt(abs(np.linalg.det(inv[:, :2]))))
    mask = np.zeros(photo.shape[:2], np.uint8)
    axes = (int(40 * scale), int(20 * scale))
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, 0, 0, 360, 255, -1)
    mpath = tmp_path / "m.png"
    Image.fromarray(mask).save(mpath)
    out = tmp_path / "r.png"
    res = run_cli(infer_main, checkpoint=tiny_checkpoint, image=photo_path, mask=mpath, out=out)
    assert res.exit_code == 0, res.output
    _read_result(out, photo, mask)


def test_tight_crop_mask_is_aligned_where_the_mouth_is():
    photo, mask = _celeba_shaped()
    aligned = align_photo(photo, mask)
    assert aligned.mask.shape == (256, 256)
    assert set(np.unique(aligned.mask)) == {0, 255}
    plain = cv2.warpAffine(mask, aligned.matrix, (256, 256), flags=cv2.INTER_NEAREST) > 0
    got = aligned.mask > 0
    assert (got & plain).sum() / (got | plain).sum() > 0.85
    ys, xs = np.nonzero(got)
    cx, cy = aligned.matrix @ np.array([87.0, 140.0, 1.0])
    assert abs(xs.mean() - cx) < 2 and abs(ys.mean() - cy) < 2


def test_one_folder_layout_pairs_by_name_and_reports_photos_without_mask(
    tiny_checkpoint, tmp_path, run_cli
):
    photo, mask = _photo_and_mask()
    folder = tmp_path / "photos"
    _save(folder, photo, mask, "a")
    Image.fromarray(photo[:, ::-1]).save(folder / "b.jpg")  # no mask
    res = run_cli(
        infer_main, checkpoint=tiny_checkpoint, image=folder, mask=folder, out=tmp_path / "out"
    )
    assert res.exit_code == 0, res.output
    assert "skipped b.jpg: no mask" in res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    _read_result(tmp_path / "out" / "a.png", photo, mask)
    pairs, notes = pair_inputs(folder, folder, tmp_path / "out")
    assert [(p.name, m.name) for p, m, _ in pairs] == [("a.png", "a.mask.png")]
    assert notes == [f"skipped b.jpg: no mask (b.mask.png) in {folder}"]


def test_mask_folder_prefers_name_mask_png_and_never_reuses_an_output(tmp_path):
    photos, masks = tmp_path / "p", tmp_path / "m"
    for name in ("a.jpg", "a.png", "c.jpg"):
        _touch_image(photos / name)
    for name in ("a.png", "a.mask.png", "c.png"):
        _touch_image(masks / name)
    pairs, notes = pair_inputs(photos, masks, tmp_path / "out")
    assert [(p.name, m.name, o.name) for p, m, o in pairs] == [
        ("a.jpg", "a.mask.png", "a.png"),
        ("c.jpg", "c.png", "c.png"),
    ]
    assert notes == ["skipped a.png: its output a.png is a.jpg's"]


def _touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="PNG")
