"""Where artifacts live: the ArtifactStore seam and the local-folder store (the default)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from mlgate.errors import ArtifactError, InvalidInput


class ArtifactStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically: readers see all of it or nothing."""
        ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def list_keys(self) -> list[str]:
        """Every stored key (temporary files of writes in progress excluded)."""
        ...


class LocalArtifactStore:
    """Artifacts as files under one folder; keys are relative paths like ``churn/1/model.skops``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes) -> None:
        self._write(key, lambda handle: handle.write(data))

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(
                f"artifact {key!r} is missing from {self.root}; restore it from a backup or "
                "train a new version"
            ) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            str(path.relative_to(self.root))
            for path in self.root.rglob("*")
            if path.is_file() and not path.name.startswith(".tmp-")
        )

    def path_of(self, key: str) -> Path:
        """Where `key`'s file lies (batch jobs read large files from it in chunks)."""
        return self._path(key)

    def put_file(self, key: str, source: Path) -> None:
        """`put` of a file's contents, copied without holding them in memory."""

        def copy(handle: BinaryIO) -> None:
            with source.open("rb") as given:
                shutil.copyfileobj(given, handle, 1 << 20)

        self._write(key, copy)

    def _write(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        """Atomically: a temporary file beside the target, synced, then renamed over it."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise InvalidInput(f"artifact key {key!r} points outside the artifact folder")
        return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
