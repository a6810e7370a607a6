"""Zips read within bounds (mlgate/archives.py): each limit refuses a crafted archive before
anything is unpacked, and says which limit and which setting."""

from __future__ import annotations

import os
import tracemalloc
import zipfile

import pytest

from mlgate.archives import ArchiveLimits, declared_entries, open_zip, read_entry
from mlgate.errors import ArchiveTooLarge, InvalidInput, PayloadTooLarge
from tests.archive_makers import bomb, claiming_entries, declaring_size, zipped

LIMITS = ArchiveLimits()


def test_a_zip_bomb_is_refused_by_its_ratio_without_unpacking_it() -> None:
    data = bomb(size=64 << 20)
    assert len(data) < 100_000  # 64 MiB of zeros in about 64 KB
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveTooLarge, match="MLGATE_ARCHIVE_MAX_RATIO") as refused:
            open_zip(data, LIMITS, what="model.zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20  # nothing near the 64 MiB was ever held
    assert isinstance(refused.value, PayloadTooLarge)  # 413
    assert "model.zip entry 'zeros.bin' expands" in str(refused.value)


def test_a_directory_claiming_a_million_entries_is_refused_before_it_is_parsed() -> None:
    data = claiming_entries(zipped({"a.txt": b"a"}), 1_000_000)
    assert declared_entries(data)[0] == 1_000_000
    with pytest.raises(ArchiveTooLarge, match=r"1,000,000 entries.*MLGATE_ARCHIVE_MAX_ENTRIES"):
        open_zip(data, LIMITS)


def test_more_real_entries_than_allowed_are_refused() -> None:
    data = zipped({f"f{i}.txt": b"" for i in range(51)})
    with pytest.raises(ArchiveTooLarge, match="51 entries"):
        open_zip(data, ArchiveLimits(max_entries=50))
    open_zip(data, ArchiveLimits(max_entries=51)).close()


def test_a_huge_declared_size_is_refused_by_the_entry_limit() -> None:
    data = declaring_size(zipped({"model.ubj": b"x" * 1000}), "model.ubj", 0xFFFFFFF0)
    with pytest.raises(
        ArchiveTooLarge, match="4,294,967,280 bytes.*MLGATE_ARCHIVE_MAX_ENTRY_BYTES"
    ):
        open_zip(data, LIMITS)


def test_entries_together_are_bounded() -> None:
    data = zipped({f"part{i}": os.urandom(300_000) for i in range(4)})  # incompressible
    with pytest.raises(ArchiveTooLarge, match="MLGATE_ARCHIVE_MAX_BYTES"):
        open_zip(data, ArchiveLimits(max_bytes=1_000_000))
    with open_zip(data, ArchiveLimits(max_bytes=1_200_000)) as archive:
        assert len(read_entry(archive, "part3", LIMITS)) == 300_000


def test_an_entry_that_unpacks_past_what_it_declared_is_stopped() -> None:
    # Small declared size, real content larger: zipfile stops at the declared size and then
    # finds the CRC wrong; nothing past the declaration is ever returned.
    data = declaring_size(zipped({"a.bin": b"y" * 5000}), "a.bin", 10)
    with open_zip(data, LIMITS) as archive, pytest.raises(zipfile.BadZipFile, match="CRC"):
        read_entry(archive, "a.bin", LIMITS)


@pytest.mark.parametrize(
    "name", ["../escape.txt", "model/../../etc/passwd", "/abs/MLmodel", "C:/x", "a\\..\\b"]
)
def test_names_that_climb_out_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="relative paths") as refused:
        open_zip(zipped({"MLmodel": b"x", name: b"x"}), LIMITS)
    assert not isinstance(refused.value, ArchiveTooLarge)  # 422, not 413


def test_something_that_is_not_a_zip_is_a_clear_422() -> None:
    with pytest.raises(InvalidInput, match="not a readable zip"):
        open_zip(b"PK\x03\x04 not really", LIMITS)
