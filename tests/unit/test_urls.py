"""Source URLs: told apart, made absolute, their passwords kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.errors import InvalidInput
from mlgate.registry.model import check_name
from mlgate.sources import urls


def test_passwords_are_redacted_and_scrubbed() -> None:
    url = "postgresql+psycopg://ada:pa55word@db.example/prod"
    assert urls.redact(url) == "postgresql+psycopg://ada:***@db.example/prod"
    assert urls.scrub("login failed for ada with pa55word", url) == "login failed for ada with ***"


def test_relative_paths_become_absolute(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a\n1\n")
    assert urls.normalize("rows.csv", tmp_path) == ("file", str(tmp_path / "rows.csv"))
    kind, url = urls.normalize("sqlite:///data.db", tmp_path)
    assert (kind, url) == ("sql", f"sqlite:///{tmp_path / 'data.db'}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("nosuchdb://x/y", "no database driver"),
        ("missing.csv", "does not exist"),
    ],
)
def test_unusable_urls_are_refused_with_advice(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=message):
        urls.normalize(url, tmp_path)


def test_names_must_fit_in_a_url() -> None:
    for bad in ["", "a/b", "churn@prod", "-x", "x" * 129, "naïve"]:
        with pytest.raises(InvalidInput):
            check_name("model", bad)
    assert check_name("model", "churn-v2.eu_1") == "churn-v2.eu_1"
