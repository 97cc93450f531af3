"""The documents match the code: every module is in docs/architecture.md, and every document
the repository cites is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("occlusion_synth", "fdsgan_train")


def _modules() -> list[str]:
    return sorted(
        str(p.relative_to(REPO / pkg))
        for pkg in PACKAGES
        for p in (REPO / pkg).rglob("*.py")
        if p.name != "__init__.py"
    )


@pytest.mark.parametrize("module", _modules())
def test_every_module_is_in_the_architecture_document(module: str) -> None:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert re.search(rf"(^|[\s/(]){re.escape(Path(module).name)}\b", text, re.M), module


def _cited() -> list[tuple[str, str]]:
    out = []
    files = [*REPO.glob("*.md"), *REPO.glob("docs/*.md"), *REPO.glob("pyproject.toml")]
    for pkg in (*PACKAGES, "benchmarks"):
        files += (REPO / pkg).rglob("*.py")
    for path in files:
        for name in re.findall(r"(?:docs/[\w.-]+|[\w/.-]*[A-Z][\w-]*)\.md\b", path.read_text()):
            out.append((str(path.relative_to(REPO)), name))
    return sorted(set(out))


@pytest.mark.parametrize(("where", "name"), _cited())
def test_cited_documents_exist(where: str, name: str) -> None:
    candidates = [REPO / name, REPO / "docs" / Path(name).name, (REPO / where).parent / name]
    assert any(c.is_file() for c in candidates), f"{where} cites {name}, not in the repository"
