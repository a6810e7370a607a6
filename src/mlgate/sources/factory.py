"""Opening a configured source as the right kind of Source."""

from __future__ import annotations

from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig


def open_source(config: SourceConfig) -> Source:
    # Imported here: both read with pandas, which a command that opens no source never loads.
    if config.kind == "file":
        from mlgate.sources.files import FileSource

        return FileSource(config.name, config.url)
    from mlgate.sources.sql import SqlSource

    return SqlSource(config.name, config.url)
