"""The user guide cannot drift from the product: every example in docs/ runs here, page by page,
against a real server each page starts itself (see tests/docs/examples.py for the rules).

The report plots a tutorial shows are the ones its own run draws: each image a page embeds from
img/PAGE/… must be among the PNGs that page's `mlgate models report --plots plots/…` wrote.
MLGATE_DOCS_FIGURES=update copies them into docs/img/ (do that when a plot changes on purpose).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.docs import examples
from tests.e2e.helpers import free_port

_IMAGE = re.compile(r"!\[[^\]]*\]\((?:\.\./)*img/([\w-]+)/([\w./-]+\.png)\)")


def test_every_block_is_an_example_or_says_what_it_is() -> None:
    found = [b for page in examples.DOCS.rglob("*.md") for b in examples.blocks(page)]
    assert len([b for b in found if b.how != "skip" and b.language in examples.RUN]) > 60
    for block in found:
        assert block.language in examples.RUN | examples.SHOWN, (
            f"{block.where}: a fence needs a language: bash or python (run), or one of "
            f"{sorted(examples.SHOWN)} (shown)"
        )
        if block.how == "skip":
            assert len(block.reason) > 15, f"{block.where}: say why the example is not run"
        if block.how == "background":
            assert "mlgate serve" in block.code, f"{block.where}: only servers run in background"


@pytest.mark.slow(
    reason="a page's examples run as its reader runs them: cold CLI starts, training with "
    "reports and tuning, a server; 25-95 s a tutorial"
)
@pytest.mark.services
@pytest.mark.parametrize("page", examples.pages(), ids=lambda p: str(p.relative_to(examples.DOCS)))
def test_every_example_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    with examples.reader(tmp_path, free_port()) as machine:
        for block in examples.blocks(page):
            if block.language in examples.RUN and block.how != "skip":
                machine.run(block)
    for stem, rest in _IMAGE.findall(page.read_text()):
        drawn = tmp_path / "plots" / rest
        assert stem == page.stem, f"{page.name} shows {stem}/{rest}: a figure of another page"
        assert drawn.is_file(), f"{page.name} shows img/{stem}/{rest}; its run drew no such plot"
        if os.environ.get("MLGATE_DOCS_FIGURES") == "update":
            target = examples.DOCS / "img" / stem / rest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(drawn, target)
        else:
            assert (examples.DOCS / "img" / stem / rest).is_file(), f"docs/img/{stem}/{rest}"
