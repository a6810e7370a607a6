"""Zips from outside (export bundles, zipped MLflow directories, skops files) read within
bounds.

A zip says how many entries it holds and how large each one is before anything is unpacked, so
every limit is checked first, from the end-of-central-directory record (the entry count, read
before `zipfile` builds an object per entry: a million entries is refused without a million
objects) and then the central directory (each entry's name and declared sizes). Entries are then
read in chunks, and a reader that gets more than an entry declared stops (`zipfile` already
stops at the declared size and checks the CRC; the count here is the belt to those braces).

    limits = ArchiveLimits(max_bytes=1 << 30, max_entries=10_000)
    with open_zip(data, limits, what="the bundle") as archive:
        manifest = read_entry(archive, "manifest.json", limits)

A limit passed is `ArchiveTooLarge` (413) naming the limit and its setting; an entry whose name
is absolute or climbs out (`..`) is `InvalidInput` (422).
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from mlgate.errors import ArchiveTooLarge, InvalidInput
from mlgate.settings import Settings

CHUNK = 1 << 20
RATIO_FLOOR = 1 << 20  # an entry that expands to less than this is not judged by its ratio
_END = b"PK\x05\x06"
_END64_LOCATOR = b"PK\x06\x07"
_END64 = b"PK\x06\x06"


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on one zip: entries, bytes once unpacked (all and each), expansion per entry."""

    max_bytes: int = 1 << 30  # MLGATE_ARCHIVE_MAX_BYTES
    max_entries: int = 10_000  # MLGATE_ARCHIVE_MAX_ENTRIES
    max_entry_bytes: int = 512 << 20  # MLGATE_ARCHIVE_MAX_ENTRY_BYTES
    max_ratio: int = 200  # MLGATE_ARCHIVE_MAX_RATIO

    @classmethod
    def of(cls, settings: Settings) -> ArchiveLimits:
        """The limits `Settings` holds (its archive_* fields)."""
        return cls(
            settings.archive_max_bytes,
            settings.archive_max_entries,
            settings.archive_max_entry_bytes,
            settings.archive_max_ratio,
        )


def declared_entries(data: bytes) -> tuple[int, int]:
    """The entry count and central directory size the end-of-central-directory record declares
    (ZIP64 included); (-1, 0) when there is no such record (not a zip)."""
    at = data.rfind(_END, max(0, len(data) - (1 << 16) - 22))
    if at < 0 or len(data) < at + 22:
        return -1, 0
    count, size = struct.unpack_from("<HI", data, at + 10)
    locator = at - 20
    zip64 = count == 0xFFFF or size == 0xFFFFFFFF
    if zip64 and locator >= 0 and data[locator : locator + 4] == _END64_LOCATOR:
        offset = struct.unpack_from("<Q", data, locator + 8)[0]
        if offset + 48 <= len(data) and data[offset : offset + 4] == _END64:
            count, size = struct.unpack_from("<QQ", data, offset + 32)
    return int(count), int(size)


def open_zip(data: bytes, limits: ArchiveLimits, *, what: str = "the archive") -> zipfile.ZipFile:
    """`data` as a ZipFile once its entry count, names and declared sizes pass `limits`."""
    count, size = declared_entries(data)
    # A directory larger than max_entries entries with 1 KiB names each cannot be an honest one.
    if count > limits.max_entries or size > limits.max_entries * 1024:
        raise _too_large(
            what,
            f"holds {count:,} entries ({size:,} bytes of directory)",
            f"at most {limits.max_entries:,}",
            "MLGATE_ARCHIVE_MAX_ENTRIES",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise InvalidInput(f"{what} is not a readable zip: {exc}") from None
    try:
        check_entries(archive.infolist(), limits, what=what)
    except BaseException:
        archive.close()
        raise
    return archive


def check_entries(
    entries: list[zipfile.ZipInfo], limits: ArchiveLimits, *, what: str = "the archive"
) -> None:
    """Every limit on a zip's central directory, and every name a plain relative path."""
    if len(entries) > limits.max_entries:
        raise _too_large(
            what,
            f"holds {len(entries):,} entries",
            f"at most {limits.max_entries:,}",
            "MLGATE_ARCHIVE_MAX_ENTRIES",
        )
    total = 0
    for entry in entries:
        check_name(entry.filename, what=what)
        if entry.file_size > limits.max_entry_bytes:
            raise _too_large(
                what,
                f"entry {entry.filename[:120]!r} unpacks to {entry.file_size:,} bytes",
                f"at most {limits.max_entry_bytes:,}",
                "MLGATE_ARCHIVE_MAX_ENTRY_BYTES",
            )
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_FLOOR and ratio > limits.max_ratio:
            raise _too_large(
                what,
                f"entry {entry.filename[:120]!r} expands {ratio:,.0f} times "
                f"({entry.compress_size:,} to {entry.file_size:,} bytes)",
                f"at most {limits.max_ratio:,} times",
                "MLGATE_ARCHIVE_MAX_RATIO",
            )
        total += entry.file_size
        if total > limits.max_bytes:
            raise _too_large(
                what,
                f"unpacks to more than {total:,} bytes",
                f"at most {limits.max_bytes:,}",
                "MLGATE_ARCHIVE_MAX_BYTES",
            )


def check_name(name: str, *, what: str = "the archive") -> None:
    """A plain relative path: not absolute, no drive, no backslash, no `..`, no NUL."""
    path = PurePosixPath(name)
    if (
        not name
        or "\x00" in name
        or "\\" in name
        or path.is_absolute()
        or ".." in path.parts
        or (len(name) > 1 and name[1] == ":")
    ):
        raise InvalidInput(
            f"{what} holds an entry named {name[:120]!r}: entries are relative paths that stay "
            "inside the archive (no leading /, no .., no backslashes); it was not read"
        )


def read_entry(archive: zipfile.ZipFile, name: str, limits: ArchiveLimits) -> bytes:
    """One entry's bytes, read in chunks, never more than it declared or than the limits."""
    info = archive.getinfo(name)
    bound = min(info.file_size, limits.max_entry_bytes)
    out = bytearray()
    with archive.open(info) as stream:
        while chunk := stream.read(CHUNK):
            out += chunk
            if len(out) > bound:
                raise _too_large(
                    f"entry {name[:120]!r}",
                    f"unpacks past {bound:,} bytes",
                    "what it declared",
                    "MLGATE_ARCHIVE_MAX_ENTRY_BYTES",
                )
    return bytes(out)


def _too_large(what: str, found: str, allowed: str, setting: str) -> ArchiveTooLarge:
    return ArchiveTooLarge(
        f"{what} {found}; {allowed} may be read ({setting}). Nothing was unpacked: split it, "
        "or an operator raises the limit"
    )
