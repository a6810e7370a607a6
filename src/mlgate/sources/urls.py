"""Telling source URLs apart, making them absolute, and keeping their passwords out of sight."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from mlgate.errors import InvalidInput

FILE_SUFFIXES = (".csv", ".parquet", ".pq")
_SQL_HINT = (
    "use a SQLAlchemy URL such as postgresql+psycopg://user:pass@host/db, "
    "mysql+pymysql://user:pass@host/db or sqlite:///path/to/file.db, "
    "or the path of a .csv/.parquet file or of a folder of them"
)


def normalize(url: str, cwd: Path) -> tuple[str, str]:
    """Return (kind, url) with relative file and SQLite paths made absolute against `cwd`."""
    url = url.strip()
    if not url:
        raise InvalidInput(f"the source URL is empty; {_SQL_HINT}")
    if "://" not in url:
        return "file", str(_file_path(url, cwd))
    if url.startswith("file://"):
        return "file", str(_file_path(url.removeprefix("file://"), cwd))
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = Path(parsed.database).expanduser()
        if not database.is_absolute():
            parsed = parsed.set(database=str((cwd / database).resolve()))
        return "sql", parsed.render_as_string(hide_password=False)
    return "sql", url


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by ***."""
    if "://" not in url or url.startswith("file://"):
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<unparseable URL>"


def password_of(url: str) -> str | None:
    """The URL's password, so error messages from drivers can be scrubbed of it."""
    if "://" not in url:
        return None
    try:
        password = make_url(url).password
    except (sa.exc.ArgumentError, ValueError):
        return None
    return str(password) if password else None


def scrub(message: str, url: str) -> str:
    """`message` with the URL's password (if it appears) replaced by ***."""
    password = password_of(url)
    return message.replace(password, "***") if password else message


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise InvalidInput(f"that source URL could not be parsed; {_SQL_HINT}") from None
    try:
        parsed.get_dialect()
    except (sa.exc.NoSuchModuleError, ImportError):
        raise InvalidInput(f"no database driver for {parsed.drivername!r}; {_SQL_HINT}") from None
    return parsed


def _file_path(raw: str, cwd: Path) -> Path:
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else (cwd / path)
    path = path.resolve()
    if not path.exists():
        raise InvalidInput(
            f"{path} does not exist; give the path of a .csv/.parquet file or folder"
        )
    if path.is_file() and path.suffix.lower() not in FILE_SUFFIXES:
        raise InvalidInput(f"{path.name} is not a .csv or .parquet file; {_SQL_HINT}")
    return path
