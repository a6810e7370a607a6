"""The guide's code examples, read from its Markdown and run the way a reader would.

The pages are the guide's (docs/**/*.md) and the repository's README.md, whose tour runs like a
page of its own (its links are relative to the repository root; it is not part of the site).

Every fenced block whose language is `bash` or `python` is an example and runs, in the order of
its page, unless the comment line just above it says otherwise:

    <!-- run: background -->       a server the page starts: it runs in the background, and the
                                   next block waits until it answers /readyz; stopped at page end
    <!-- skip: REASON -->          not run here (e.g. it needs Kubernetes); the reason is required

Each page runs on a fresh machine of its own: an empty working folder and home (MLGATE_HOME), the
venv's `mlgate` on PATH. Variables a bash block exports reach the later blocks; the python blocks
of a page share one namespace. The guide writes its server as 127.0.0.1:8000; a page runs
against a free port instead (every "127.0.0.1:8000" and "--port 8000" is rewritten). Databases
and Redis prefixes the guide names `mlgate_guide` get a name of their own per run, and are
dropped (the Redis keys deleted) when the page is done.
Other languages (text, toml, yaml, json, nginx, ini) are output or configuration, not examples.

A line `mlgate quickstart --no-serve` on the embedded defaults gets the home that command leaves,
copied from the one quickstart of the test run (tests/e2e/helpers.quickstarted): its model is
trained once, not once per page. The getting-started page, whose subject it is, runs it for real;
so does a page that points mlgate at a database server first.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.helpers import quickstarted, wait_ready

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
RUN = {"bash", "python"}
SHOWN = {"text", "toml", "yaml", "json", "nginx", "ini", "http", "sql"}
_FENCE = re.compile(r"^```([\w-]*)\s*$")
QUICKSTART = "mlgate quickstart --no-serve"
_DIRECTIVE = re.compile(r"^<!--\s*(run|skip):\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the first code line, 1-based
    language: str
    code: str
    how: str  # "run", "background" or "skip"
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{name(self.page)}:{self.line}"


def name(page: Path) -> str:
    """A page as the tests name it: relative to docs/ (`guides/protocols.md`), or to the
    repository root for the README."""
    return str(page.relative_to(DOCS if page.is_relative_to(DOCS) else ROOT))


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        if i == len(lines):
            raise AssertionError(f"{name(page)}:{start + 1}: a fence never closes")
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        directive = _DIRECTIVE.match(before.strip())
        how, reason = "run", ""
        if directive and directive.group(1) == "skip":
            how, reason = "skip", directive.group(2)
        elif directive and directive.group(2) == "background":
            how = "background"
        code = "\n".join(lines[start + 1 : i])
        found.append(Block(page, start + 2, opened.group(1), code, how, reason))
        i += 1
    return found


@dataclass(frozen=True)
class Section:
    """The examples under one `## ` heading of a page (those above the first heading form the
    first section): a page's unit of testing, run after the sections before it, on its machine."""

    page: Path
    number: int  # 1-based
    title: str
    blocks: tuple[Block, ...]

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")[:40]
        return f"{name(self.page)}#{self.number}-{slug or 'top'}"


def sections(page: Path) -> list[Section]:
    """The page's sections that hold an example to run, in order."""
    headings: list[tuple[int, str]] = [(0, "")]
    fenced = False
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if _FENCE.match(line) or (fenced and line.rstrip() == "```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            headings.append((number, line[3:].strip()))
    runnable = [b for b in blocks(page) if b.language in RUN and b.how != "skip"]
    found: list[Section] = []
    for i, (start, title) in enumerate(headings):
        end = headings[i + 1][0] if i + 1 < len(headings) else 10**9
        inside = tuple(b for b in runnable if start < b.line < end)
        if inside:
            found.append(Section(page, len(found) + 1, title or "top", inside))
    return found


def every_page() -> list[Path]:
    """The README, then every page of the guide."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def pages() -> list[Path]:
    """Pages with at least one example to run."""
    return [p for p in every_page() if any(b.language in RUN for b in blocks(p))]


class Reader:
    """One reader's machine for one page: a folder, a home, the environment and the servers."""

    def __init__(self, work: Path, port: int) -> None:
        self.work = work
        self.port = port
        keep = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_")}
        self.env = keep | {
            "MLGATE_HOME": str(work / "home"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{keep.get('PATH', '')}",
            "COLUMNS": "120",
        }
        self.namespace: dict[str, object] = {"__name__": "__docs__"}
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.unique = f"mlgate_guide_{uuid.uuid4().hex[:10]}"

    def localise(self, code: str) -> str:
        code = code.replace("mlgate_guide", self.unique)
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        return code.replace("--port 8000", f"--port {self.port}")

    def run(self, block: Block) -> None:
        code = self.localise(block.code)
        if block.how == "background":
            self._start(block, code)
        elif block.language == "bash":
            self._bash(block, code)
        else:
            self._python(block, code)

    def _bash(self, block: Block, code: str) -> None:
        lines = code.splitlines()
        if (
            QUICKSTART in lines
            and "MLGATE_DATABASE_URL" not in self.env
            and block.page.name != "getting-started.md"
        ):
            quickstarted(Path(self.env["MLGATE_HOME"]))
            code = "\n".join(line for line in lines if line != QUICKSTART)
        dump = self.work / ".env-after"
        script = f"set -euo pipefail\n{code}\nenv -0 > {dump}\n"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{block.where}: the bash example failed (exit {done.returncode}):\n{code}\n"
                f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
                f"{self._servers_said()}"
            )
        pairs = (item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
        self.env = {k: v for k, v in pairs if k not in {"SHLVL", "_", "PWD", "OLDPWD"}}

    def _python(self, block: Block, code: str) -> None:
        # Padding keeps the guide's line numbers in tracebacks.
        compiled = compile("\n" * (block.line - 1) + code, str(block.page), "exec")
        saved, cwd = dict(os.environ), Path.cwd()
        os.environ.clear()
        os.environ.update(self.env)
        os.chdir(self.work)
        try:
            exec(compiled, self.namespace)
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)

    def _start(self, block: Block, code: str) -> None:
        log = self.work / f"background-{len(self.background)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", code],
                cwd=self.work,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((process, log))
        try:
            wait_ready(f"http://127.0.0.1:{self.port}", process, log, seconds=90)
        except AssertionError as exc:
            raise AssertionError(f"{block.where}: {exc}") from None

    def _servers_said(self) -> str:
        """The end of each background server's log: what it answered, and why, is often the
        only evidence of a failed call (a 401's reason, a bind error)."""
        return "".join(
            f"\n--- {log.name} (exit {process.poll()})\n{log.read_text(errors='replace')[-3000:]}"
            for process, log in self.background
        )

    def stop(self) -> None:
        for process, _ in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self._drop_what_the_page_made()

    def _drop_what_the_page_made(self) -> None:
        import redis
        import sqlalchemy as sa

        from tests.conftest import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL

        for url, force in ((POSTGRES_ADMIN_URL, " WITH (FORCE)"), (MARIADB_ADMIN_URL, "")):
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self.unique}{force}"))
            except sa.exc.OperationalError:
                pass  # that server is not running here: the page made nothing on it
            finally:
                engine.dispose()
        try:
            client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
            for key in client.scan_iter(f"{self.unique}*"):
                client.delete(key)
            client.close()
        except redis.ConnectionError:
            pass


@contextmanager
def reader(work: Path, port: int) -> Iterator[Reader]:
    machine = Reader(work, port)
    try:
        yield machine
    finally:
        machine.stop()
