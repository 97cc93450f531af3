"""``occsynth build --exclude`` and ``occsynth screen``: faces that already show an occluder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from occlusion_synth import shards
from occlusion_synth.build import run_build
from occlusion_synth.cli import main
from occlusion_synth.errors import UserError
from occlusion_synth.exclude import leave_out, read_list
from occlusion_synth.faces import discover


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache") / "landmarks.parquet"


def test_lists_read_as_csv_with_flags_or_as_text(tmp_path):
    table = tmp_path / "screen.csv"
    table.write_text(
        "source,split,occluded,flagged,reason\n"
        "a.jpg,train,0.10,True,already occluded: 10.0 %\n"
        "b.jpg,test,0.001,False,\n"
        "c.jpg,val,0.05,true,\n"
    )
    listed = read_list(table)
    assert sorted(listed) == ["a.jpg", "c.jpg"]
    assert listed["a.jpg"].endswith("screen.csv: already occluded: 10.0 %")
    text = tmp_path / "ids.txt"
    text.write_text("# faces with sunglasses\nimg/1.jpg\n\n img/2.jpg  # a hand\n")
    assert sorted(read_list(text)) == ["img/1.jpg", "img/2.jpg"]


def test_leave_out_moves_faces_to_rejects_and_refuses_a_foreign_list(tmp_path):
    found = discover("demo")
    listing = tmp_path / "ids.txt"
    listing.write_text("demo:camera\n")
    kept = leave_out(found, listing)
    assert [s.id for s in kept.sources] == ["demo:astronaut", "demo:grace_hopper"]
    assert kept.skipped == [("demo:camera", "excluded by --exclude ids.txt")]
    assert listing in kept.listings  # a resume notices when the list changes
    listing.write_text("img_align_celeba/000001.jpg\n")
    with pytest.raises(UserError, match="none of its 1 faces is among --faces"):
        leave_out(found, listing)
    listing.write_text("source,flagged\ndemo:camera,False\n")
    with pytest.raises(UserError, match="lists no face"):
        leave_out(found, listing)


def test_build_leaves_listed_faces_out(tmp_path, cache, demo_build_options):
    listing = tmp_path / "screen.csv"
    listing.write_text("source,flagged,reason\ndemo:astronaut,True,a test\n")
    out = tmp_path / "out"
    opts = demo_build_options(out, cache, n=6, seed=1, exclude=str(listing))
    run_build(opts, progress=False)
    manifest = shards.read_manifest(out)
    assert "demo:astronaut" not in set(manifest["source_id"]) and len(manifest) == 6
    rejects = (out / "rejects.csv").read_text()
    assert "demo:astronaut" in rejects and "excluded by --exclude screen.csv: a test" in rejects
    assert shards.read_dataset_card(out)["options"]["exclude"] == str(listing)
    # another list is another build: a resume refuses it
    other = tmp_path / "other.txt"
    other.write_text("demo:camera\n")
    again = demo_build_options(out, cache, n=6, seed=1, exclude=str(other), resume=True)
    with pytest.raises(UserError, match="cannot resume"):
        run_build(again, progress=False)


def test_build_cli_exclude_errors_are_one_line(tmp_path):
    missing = tmp_path / "nope.csv"
    res = CliRunner().invoke(
        main,
        ["build", "--faces", "demo", "--n", "2", "--out", str(tmp_path / "o")]
        + ["--exclude", str(missing)],
    )
    assert res.exit_code != 0
    assert "--exclude" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


class _Marks:
    """A segmenter stand-in marking the same square on every face."""

    def masks(self, frames):
        out = []
        for frame in frames:
            m = np.zeros(frame.shape[:2], bool)
            m[100:140, 100:140] = True  # 1,600 px: 2.4 % of the frame
            out.append(m)
        return out


def test_screen_flags_faces_by_their_marked_share():
    from fdsgan_train.screen import screen_faces
    from occlusion_synth.faces import load_aligned
    from occlusion_synth.imageio import Reject

    sources = discover("demo").sources

    def align(src):
        if src.id == "demo:camera":
            raise Reject("no face found")
        return load_aligned(src)

    ticks = []
    result = screen_faces(sources, align, _Marks(), 0.02, progress=ticks.append)
    assert sum(ticks) == 3 and result.rejects == [("demo:camera", "no face found")]
    assert [r["source"] for r in result.rows] == ["demo:astronaut", "demo:grace_hopper"]
    for row in result.rows:
        # the share counts the photo's own pixels only, so it is at least 1600 / 65536
        assert row["occluded"] >= round(1600 / 256**2, 5) and row["flagged"]
        assert row["reason"].startswith("already occluded:")
    strict = screen_faces(sources[:1], load_aligned, _Marks(), 0.5)
    assert strict.flagged == 0 and strict.rows[0]["reason"] == ""


def test_screen_keeps_only_the_sheets_faces(monkeypatch):
    from fdsgan_train import screen
    from occlusion_synth.faces import load_aligned

    monkeypatch.setattr(screen, "SHEET_MAX", 2)
    sources = discover("demo").sources * 2  # six flagged faces
    result = screen.screen_faces(sources, load_aligned, _Marks(), 0.02)
    assert result.flagged == 6 and len(result.tiles) == 2
    shares = [t[0] for t in result.tiles]
    assert shares == sorted(shares, reverse=True)  # the most occluded first
    assert shares[0] == pytest.approx(max(r["occluded"] for r in result.rows), abs=1e-5)
