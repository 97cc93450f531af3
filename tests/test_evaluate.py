"""fdsgan-eval end to end on a tiny checkpoint and toy shards (no ../shared needed)."""

from __future__ import annotations

import io
import tarfile

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from fdsgan_train.baselines import METHODS
from fdsgan_train.cli_eval import eval_main

N_TEST = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_checkpoint):
    """The random ``tiny`` checkpoint and toy shards, in a folder for the outputs."""
    from fdsgan_train.toy_data import write_toy_shards

    root = tmp_path_factory.mktemp("eval")
    data = write_toy_shards(root / "data", {"train": 2, "test": N_TEST})
    return root, tiny_checkpoint, data


def _read_test_samples(data):
    """The test split read independently of the project: tarfile + PIL."""
    samples = {}
    for shard in sorted((data / "shards").glob("test-*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                key, part = m.name.split(".", 1)
                if part.endswith("png"):
                    img = Image.open(io.BytesIO(tar.extractfile(m).read()))
                    samples.setdefault(key, {})[part[:-4]] = np.asarray(img)
    return samples


def test_eval_writes_all_outputs_and_rows_match_an_independent_computation(setup, run_cli):
    root, ckpt, data = setup
    out = root / "out"
    res = run_cli(eval_main, checkpoint=ckpt, data=data, out=out)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out / "metrics.csv", keep_default_na=True)
    assert len(frame) == N_TEST * len(METHODS)
    assert set(frame["method"]) == set(METHODS)
    assert set(frame["category"]) == {"rectangle"}

    samples = _read_test_samples(data)
    assert set(frame["key"]) == set(samples)
    for key, s in samples.items():
        telea = cv2.inpaint(s["input"], s["mask"], 3, cv2.INPAINT_TELEA)
        for method, result in (("input", s["input"]), ("telea", telea)):
            row = frame[(frame["key"] == key) & (frame["method"] == method)].iloc[0]
            ssim = structural_similarity(
                result,
                s["target"],
                channel_axis=2,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
            )
            assert row["ssim"] == pytest.approx(ssim, abs=1e-6)
            assert row["psnr"] == pytest.approx(
                peak_signal_noise_ratio(s["target"], result, data_range=255), abs=1e-6
            )
            assert row["mse"] == pytest.approx(mean_squared_error(s["target"], result))
            sel = s["mask"] > 0
            diff = result[sel].astype(float) - s["target"][sel].astype(float)
            assert row["masked_mse"] == pytest.approx(np.mean(diff**2))
    # composited model rows leave the outside of the mask alone: better than raw there
    mean = frame.groupby("method")["mse"].mean()
    assert mean["stage2"] < mean["stage2_raw"] and mean["stage1"] < mean["stage1_raw"]

    summary = (out / "summary.md").read_text()
    for m in METHODS.values():
        assert f"`{m.name}`" in summary
    for ref in ("0.9810", "32.803", "34.145", "4.499", "42.504"):
        assert ref in summary
    assert "Table 2" in summary and "### rectangle (3 samples, mean coverage" in summary
    _check_summary_layout(summary, frame)

    sheet = Image.open(out / "comparison.png")
    assert sheet.size == (6 * 160, 22 + N_TEST * 160)


def _check_summary_layout(summary: str, frame) -> None:
    """Masked metrics lead every table; the paper's row sits beside raw rows only; coverage
    printed (overall, per bin, per category); LPIPS/FID absent with a reason."""
    tables = summary.split("| Method | ")[1:]
    assert len(tables) >= 6 and all(t.startswith("PSNR (mask) ↑ |") for t in tables)
    sections = summary.split("\n## ")
    (table1,) = [x for x in sections if x.startswith("Table 1")]
    rows = [ln for ln in table1.splitlines() if ln.startswith("| ") and "Method" not in ln]
    assert [r.split("`")[1] if "`" in r else r for r in rows][:2] == ["stage1_raw", "stage2_raw"]
    assert rows[2].startswith("| *Paper") and summary.count("*Paper") == 1
    cov = frame.drop_duplicates("key")["coverage"].mean()
    assert f"mean coverage {100 * cov:.1f} %" in summary
    assert "### coverage " in summary
    assert "LPIPS: not computed" in summary and "FID: not computed" in summary
    assert "never downloads" in summary


def test_composite_models_get_no_paper_row_and_raw_rows_are_marked():
    from fdsgan_train.evaluate import summary_markdown

    rows = []
    for key, cov in (("a", 0.03), ("b", 0.25)):
        for m in METHODS:
            rows.append(
                {"key": key, "category": "cup", "coverage": cov, "source": "synthetic",
                 "method": m, "psnr": 30.0, "ssim": 0.9, "mse": 10.0,
                 "masked_psnr": 20.0, "masked_ssim": 0.5, "masked_mse": 100.0}
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    text = summary_markdown(frame, "c.pt", "d", "val", None, [], {"composite": True})
    assert "*Paper" not in text and "Table 1 —" not in text
    assert "Stage I+II (raw) † (`stage2_raw`)" in text
    assert "### coverage 0-5 % (1 samples, mean coverage 3.0 %)" in text
    assert "### coverage ≥ 20 % (1 samples, mean coverage 25.0 %)" in text
    plain = summary_markdown(frame, "c.pt", "d", "val", None, [], {"composite": False})
    assert "Stage I+II (raw) (`stage2_raw`)" in plain and plain.count("*Paper") == 1


def test_eval_real_photos_add_niqe_and_brisque_rows(setup, tmp_path, run_cli):
    from skimage import data as skdata

    root, ckpt, data = setup
    real = tmp_path / "real"
    real.mkdir()
    face = skdata.astronaut()
    Image.fromarray(face).save(real / "astronaut.jpg", quality=95)
    mask = np.zeros(face.shape[:2], np.uint8)
    cv2.ellipse(mask, (224, 140), (32, 15), 5, 0, 360, 255, -1)
    Image.fromarray(mask).save(real / "astronaut.mask.png")
    Image.fromarray(face[::2, ::2]).save(real / "unmasked.png")
    flat = np.full((300, 300, 3), (90, 120, 150), np.uint8)
    Image.fromarray(flat).save(real / "noface.png")
    Image.fromarray(np.full((300, 300), 255, np.uint8)).save(real / "noface.mask.png")
    out = root / "out_real"
    res = run_cli(eval_main, checkpoint=ckpt, data=data, out=out, limit=1, real=real)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out / "metrics.csv")
    real_rows = frame[frame["source"] == "real"]
    assert set(real_rows[real_rows["key"] == "astronaut"]["method"]) == set(METHODS)
    assert list(real_rows[real_rows["key"] == "unmasked"]["method"]) == ["input"]
    assert "noface" not in set(real_rows["key"])
    assert real_rows[["niqe", "brisque"]].notna().all().all()
    assert frame[frame["source"] == "synthetic"][["niqe", "brisque"]].isna().all().all()
    summary = (out / "summary.md").read_text()
    assert "noface.png: skipped (no face found in the photo)" in summary
    (table,) = [x for x in summary.split("\n## ") if x.startswith("Whole image — all methods")]
    rows = table.split("\n\n")[1]
    assert "NIQE" in rows and "—" not in rows  # every method has NIQE and BRISQUE figures


def test_eval_errors_are_one_line_with_exit_code_2(setup, tmp_path, run_cli):
    root, ckpt, data = setup
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    cases = [
        ({"checkpoint": bad, "data": data}, "cannot read checkpoint"),
        ({"checkpoint": tmp_path / "missing.pt", "data": data}, "does not exist"),
        ({"checkpoint": ckpt, "data": data, "split": "val"}, "no 'val' samples"),
        ({"checkpoint": ckpt, "data": tmp_path}, "no 'test' samples"),
    ]
    for options, text in cases:
        res = run_cli(eval_main, **options, out=tmp_path / "o")
        assert res.exit_code == 2, res.output
        assert text in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1
