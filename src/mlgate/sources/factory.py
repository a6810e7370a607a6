"""Opening a configured source as the right kind of Source."""

from __future__ import annotations

from mlgate.sources.base import Source, SourceConfig
from mlgate.sources.files import FileSource
from mlgate.sources.sql import SqlSource


def open_source(config: SourceConfig) -> Source:
    if config.kind == "file":
        return FileSource(config.name, config.url)
    return SqlSource(config.name, config.url)
