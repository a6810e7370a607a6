"""The guide builds with `mkdocs build --strict`: a broken link, a page missing from the
navigation, or a reference the generator cannot produce fails here, as it would in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_without_warnings(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    site = tmp_path / "site"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "mlgate train" in cli and "--algorithm" in cli  # generated from the commands
    http = (site / "reference" / "http" / "index.html").read_text()
    assert "/v1/models/{name}/predict" in http  # generated from the OpenAPI document
    assert (site / "reference" / "openapi.json").is_file()
    client = (site / "reference" / "client" / "index.html").read_text()
    assert "retry_on_429" in client and "PayloadTooLarge" in client  # from the docstrings
