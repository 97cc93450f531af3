"""Contact sheets and the ``occsynth preview`` command."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from occlusion_synth.cli import main
from occlusion_synth.preview import (
    CELL,
    HEADER_H,
    LABEL_H,
    dataset_rows,
    draw_sample_sheet,
    grid_shape,
    row_height,
    sample_label,
    sheet_size,
    tile_width,
)


def _rows(n: int):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        target = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        mask = np.zeros((256, 256), np.uint8)
        mask[100:150, 80:200] = 255
        inp = target.copy()
        inp[mask == 255] = (10, 200, 30)
        out.append((inp, mask, target, f"{i + 1}. thing (test)"))
    return out


def test_sheet_layout_rows_and_cells(tmp_path) -> None:
    rows = _rows(3)
    path = tmp_path / "sheet.png"
    sheet = draw_sample_sheet(rows, path, title="unit test")
    saved = Image.open(path)
    assert saved.size == sheet.size == sheet_size(3)
    assert grid_shape(3) == (2, 2)  # a grid, filled row by row
    assert saved.height == HEADER_H + 2 * row_height() + 4
    arr = np.asarray(saved)
    # The second sample (first row, second tile) shows its pixels unchanged (no resampling).
    y = HEADER_H + LABEL_H
    x = 4 + tile_width()
    np.testing.assert_array_equal(arr[y : y + CELL, x : x + CELL], rows[1][0])
    # Its mask cell is the mask, grey.
    m = arr[y : y + CELL, x + 4 + CELL : x + 4 + 2 * CELL]
    np.testing.assert_array_equal(m[..., 0], rows[1][1])
    # The third sample starts the second row of tiles.
    y3 = HEADER_H + row_height() + LABEL_H
    np.testing.assert_array_equal(arr[y3 : y3 + CELL, 4 : 4 + CELL], rows[2][0])
    # The label strip carries dark text on a light background.
    strip = arr[y - 22 : y - 4, x : x + CELL]
    assert strip.min() < 80 and strip.max() > 230


def test_sample_label_names_occluders_and_coverage() -> None:
    meta = {
        "occluders": [
            {"name": "aviator_gold", "category": "sunglasses"},
            {"name": "hand_fist", "category": "hand"},
        ],
        "coverage": 0.125,
        "source_id": "demo:astronaut",
    }
    label = sample_label(2, meta)
    assert label.startswith("3. aviator_gold (sunglasses) + hand_fist (hand)")
    assert "12.5% masked" in label and "demo:astronaut" in label


def test_preview_requires_exactly_one_source(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["preview", "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2
    assert "exactly one of" in res.output


def test_preview_command_on_demo_faces(tmp_path) -> None:
    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(
        main,
        [
            "preview",
            "--faces",
            "demo",
            "--n",
            "3",
            "--seed",
            "4",
            "--max-occluders",
            "2",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    img = Image.open(out)
    assert img.size == sheet_size(4) == (4 + 2 * 3 * (CELL + 4), HEADER_H + 2 * row_height() + 4)


def test_preview_from_a_built_dataset(tmp_path) -> None:
    from occlusion_synth import shards

    root = tmp_path / "data"
    rows = _rows(3)
    with shards.ShardWriter(root / "shards" / shards.shard_name("train", 0)) as writer:
        for i, (inp, mask, target, _) in enumerate(rows):
            meta = {
                "occluders": [{"name": f"thing{i}", "category": "test"}],
                "coverage": 0.1,
                "split": "train",
            }
            writer.add(shards.encode_sample(f"k{i}", inp, mask, target, meta))
    out = tmp_path / "from.png"
    res = CliRunner().invoke(main, ["preview", "--from", str(root), "--n", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    img = Image.open(out)
    assert img.height == HEADER_H + 2 * row_height() + 4
    y = HEADER_H + LABEL_H
    np.testing.assert_array_equal(np.asarray(img)[y : y + CELL, 4 : 4 + CELL], rows[0][0])
    listed = dataset_rows(root, 5)  # fewer samples than asked: all of them, in order
    assert [r[3] for r in listed] == [
        f"{i + 1}. thing{i} (test)  ·  10.0% masked  ·  k{i} (train)" for i in range(3)
    ]
    np.testing.assert_array_equal(listed[2][1], rows[2][1])
