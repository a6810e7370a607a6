"""The user guide cannot drift from the product: every example in docs/ and in README.md runs
here, page by page and section by section, against a real server each page starts itself (see
tests/docs/examples.py for the rules).

The report plots a tutorial shows are the ones its own run draws: each image a page embeds from
img/PAGE/… must be among the PNGs that page's `mlgate models report --plots plots/…` wrote.
MLGATE_DOCS_FIGURES=update copies them into docs/img/ (do that when a plot changes on purpose).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs import examples
from tests.e2e.helpers import free_port

_IMAGE = re.compile(r"!\[[^\]]*\]\((?:\.\./)*img/([\w-]+)/([\w./-]+\.png)\)")


def test_every_block_is_an_example_or_says_what_it_is() -> None:
    found = [b for page in examples.every_page() for b in examples.blocks(page)]
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


# A page runs section by section, each a test of its own: sections of one page stay on one worker
# in order (tests/conftest.py), each continuing on the machine the sections before it left (its
# home, variables, python namespace and servers). A section asked for alone (`-k`) replays those
# before it first; once one fails, the rest of its page report that instead of running on a
# machine left half-way.
_machines: dict[Path, tuple[examples.Reader, int]] = {}
_broken: dict[Path, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _stop_what_is_left() -> Iterator[None]:
    yield
    for machine, _ in _machines.values():
        machine.stop()
    _machines.clear()


def _machine(section: examples.Section, folders: pytest.TempPathFactory) -> examples.Reader:
    page = section.page
    held = _machines.pop(page, None)
    if held is not None and held[1] == section.number:
        return held[0]
    if held is not None:
        held[0].stop()
    machine = examples.Reader(folders.mktemp(page.stem), free_port())
    try:
        for before in examples.sections(page)[: section.number - 1]:
            for block in before.blocks:
                machine.run(block)
    except BaseException:
        machine.stop()
        raise
    return machine


@pytest.mark.slow(
    reason="a page's examples run as its reader runs them: cold CLI starts, training with "
    "reports and tuning, a server; up to 45 s a section"
)
@pytest.mark.services
@pytest.mark.parametrize(
    "section", [s for p in examples.pages() for s in examples.sections(p)], ids=lambda s: s.id
)
def test_every_example_of_the_page_runs(
    section: examples.Section, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = section.page
    if page in _broken and section.number > 1:
        pytest.fail(f"not run: {_broken[page]} failed first, and this section continues it")
    _broken.pop(page, None)
    machine = _machine(section, tmp_path_factory)
    last = section.number == len(examples.sections(page))
    try:
        for block in section.blocks:
            machine.run(block)
    except BaseException:
        _broken[page] = f"section {section.id}"
        machine.stop()
        raise
    if not last:
        _machines[page] = (machine, section.number + 1)
        return
    machine.stop()
    for stem, rest in _IMAGE.findall(page.read_text()):
        drawn = machine.work / "plots" / rest
        assert stem == page.stem, f"{page.name} shows {stem}/{rest}: a figure of another page"
        assert drawn.is_file(), f"{page.name} shows img/{stem}/{rest}; its run drew no such plot"
        if os.environ.get("MLGATE_DOCS_FIGURES") == "update":
            target = examples.DOCS / "img" / stem / rest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(drawn, target)
        else:
            assert (examples.DOCS / "img" / stem / rest).is_file(), f"docs/img/{stem}/{rest}"
