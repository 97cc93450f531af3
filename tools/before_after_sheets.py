"""Before/after contact sheets of every drawn occluder category, on the bundled demo faces.

Renders the same samples (same faces, seeds and category) with the code of an earlier
revision ("before", from a temporary ``git worktree``) and with this working tree ("after"),
and writes two sheets side by side, ``before_after_masks.png`` (worn on the lower face, and
masks worn with glasses) and ``before_after_objects.png`` (eyewear, headwear, hands and
held objects). Only the demo faces that ship with scikit-image are used, never user photos.
Run from the repository root with the package installed:

    python tools/before_after_sheets.py --before 8a8a812 --out docs/

``--render DIR`` (used internally) renders this tree's tiles into DIR as PNGs and exits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

#: (sheet, rows): each row is one category (or "a+b" for two worn together).
SHEETS = {
    "before_after_masks.png": [
        "medical_mask",
        "cloth_mask",
        "scarf",
        "medical_mask+eyeglasses",
    ],
    "before_after_objects.png": [
        "sunglasses",
        "eyeglasses",
        "cap",
        "hand",
        "phone",
        "microphone",
        "headset",
        "cup",
    ],
}
#: Samples per row (each shown before and after).
PER_ROW = 3
TILE = 192


def rows() -> list[str]:
    return [r for rs in SHEETS.values() for r in rs]


def render(out: Path) -> None:
    """This tree's tiles: ``<row>_<k>.png`` for every row and sample; a row of a category
    this tree does not have (one added since) shows the bare face."""
    from PIL import Image

    import occlusion_synth
    from occlusion_synth.faces import demo_faces, load_aligned
    from occlusion_synth.occluders.library import OccluderLibrary
    from occlusion_synth.sample import SampleOptions, make_sample

    print(f"rendering with {Path(occlusion_synth.__file__).parent}", file=sys.stderr)
    faces = [load_aligned(src, provider="mediapipe") for src in demo_faces()]
    lib = OccluderLibrary.load()
    out.mkdir(parents=True, exist_ok=True)
    for r, row in enumerate(rows()):
        cats = row.split("+")
        opts = SampleOptions({c: 1.0 for c in cats}, max_occluders=len(cats))
        for k in range(PER_ROW):
            face = faces[k % len(faces)]
            if not set(cats) <= set(lib.categories):
                Image.fromarray(face.image).save(out / f"{row}_{k}.png")
                continue
            s = None
            for attempt in range(40):  # a combined row wants every category of it
                s = make_sample(face, lib, np.random.default_rng([7, r, k, attempt]), opts)
                if sorted(s.meta["categories"].split("+")) == sorted(cats):
                    break
            assert s is not None
            Image.fromarray(s.input).save(out / f"{row}_{k}.png")


def compose(before: Path, after: Path, out: Path) -> None:
    """The two sheets from the rendered tiles."""
    from PIL import Image, ImageDraw

    label_h = 16
    for name, sheet_rows in SHEETS.items():
        W, H = 2 * PER_ROW * TILE, len(sheet_rows) * (TILE + label_h)
        sheet = Image.new("RGB", (W, H), (24, 24, 24))
        draw = ImageDraw.Draw(sheet)
        for r, row in enumerate(sheet_rows):
            y = r * (TILE + label_h)
            for k in range(PER_ROW):
                for j, (tag, folder) in enumerate((("before", before), ("after", after))):
                    x = (2 * k + j) * TILE
                    tile = Image.open(folder / f"{row}_{k}.png").convert("RGB")
                    sheet.paste(tile.resize((TILE, TILE), Image.LANCZOS), (x, y + label_h))
                    draw.text((x + 3, y + 2), f"{row} {tag}", fill=(255, 255, 255))
        sheet.save(out / name, optimize=True)
        print(f"wrote {out / name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", default="8a8a812", help="Git revision drawn as 'before'.")
    p.add_argument("--out", type=Path, default=Path("docs"), help="Folder for the sheets.")
    p.add_argument("--render", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.render is not None:
        render(a.render)
        return
    script = Path(__file__).resolve()
    with tempfile.TemporaryDirectory(prefix="before_after_") as tmp:
        tmp_path = Path(tmp)
        tree = tmp_path / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), a.before], check=True)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run(
                [sys.executable, str(script), "--render", str(tmp_path / "before")],
                check=True,
                env=env,
                cwd=tree,
            )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=True)
        render(tmp_path / "after")
        a.out.mkdir(parents=True, exist_ok=True)
        compose(tmp_path / "before", tmp_path / "after", a.out)


if __name__ == "__main__":
    main()
