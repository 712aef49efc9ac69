"""What the local tools and their docs point a reader to exists, inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    ROOT / "Makefile",
    ROOT / "README.md",
    ROOT / "test.http",
    ROOT / "docs" / "local.md",
    ROOT / "docs" / "worker.md",
    ROOT / "benchmarks" / "bench_pipeline.py",
    ROOT / "tools" / "send_events.py",
    *sorted((ROOT / "devhost").rglob("*.py")),
]


def _headings() -> list[str]:
    return [h.strip() for h in re.findall(r"^#{2,3} (.+)$", (ROOT / "README.md").read_text(), flags=re.MULTILINE)]


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_readme_sections_named_exist(path: Path) -> None:
    """Each "README: <section>" names a README heading (the Makefile once sent readers to a missing one)."""
    headings = [h.lower() for h in _headings()]
    for name in re.findall(r"README: ([A-Za-z][\w ,.;-]*?)[);\"\n]", path.read_text()):
        section = name.split(";")[0].strip().lower()
        assert any(h.startswith(section) for h in headings), f"{path.name} names README section {name!r}"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_no_reference_leaves_the_repository(path: Path) -> None:
    """Nothing cites a file outside the repository (../shared/WORKER.md was one): the facts live in docs/."""
    assert "../shared/" not in path.read_text()


def test_links_between_the_docs_resolve() -> None:
    """Relative links in README.md and docs/*.md name files that exist (anchors aside)."""
    for page in [ROOT / "README.md", ROOT / "docs" / "local.md", ROOT / "docs" / "worker.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
