"""Without the [train] extra, fdsgan-train says what to install (one line, exit 2)."""

from __future__ import annotations

import importlib
import sys

from click.testing import CliRunner


def test_train_without_torch_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    monkeypatch.delitem(sys.modules, "fdsgan_train.cli", raising=False)
    cli = importlib.import_module("fdsgan_train.cli")  # importable without torch
    r = CliRunner().invoke(cli.train_main, ["--data", str(tmp_path), "--run-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output == (
        "Error: fdsgan-train needs torch, which is not installed: "
        'pip install "occlusion-synth[train]" (from a clone: pip install -e ".[train]")\n'
    )
    assert CliRunner().invoke(cli.train_main, ["--help"]).exit_code == 0
