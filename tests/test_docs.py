"""The README and docs/: every relative link leads to a file (and heading) that exists, and the
README stays a guide of at most README_MAX_LINES lines."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 300
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def broken_links(page: Path) -> list:
    """The links in ``page`` to a missing file or to a heading its target does not have."""
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif fragment and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
            if fragment not in {anchor(h) for h in headings}:
                broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_leads_somewhere(page):
    assert broken_links(page) == []


def test_a_broken_link_or_heading_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# A heading, here\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-heading-here) [gone](missing.md) [bad](other.md#nowhere) "
                    "[web](https://example.org)\n")
    assert broken_links(page) == ["missing.md", "other.md#nowhere"]


def test_the_readme_is_a_guide_not_a_notebook():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES
