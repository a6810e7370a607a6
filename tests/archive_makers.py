"""Crafted zips for the archive-limit tests, made in the test and small on disk: a bomb of
zeros (deflate packs them about 1,000 to 1), a directory that claims a million entries, an entry
that declares gigabytes, names that climb out."""

from __future__ import annotations

import io
import struct
import zipfile

END = b"PK\x05\x06"


def zipped(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def bomb(name: str = "zeros.bin", size: int = 64 << 20, *, extra: dict[str, bytes] | None = None
         ) -> bytes:  # fmt: skip
    """`size` zero bytes in one deflated entry (64 MiB take about 64 KB), written in chunks."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for other, data in (extra or {}).items():
            archive.writestr(other, data)
        with archive.open(name, "w", force_zip64=size > 0x7FFFFFFF) as entry:
            chunk = bytes(1 << 20)
            for _ in range(size // len(chunk)):
                entry.write(chunk)
    return out.getvalue()


def claiming_entries(data: bytes, count: int) -> bytes:
    """`data` (a small zip) with an end record that claims `count` entries (ZIP64 past 65,534)."""
    at = data.rfind(END)
    end = bytearray(data[at:])
    if count < 0xFFFF:
        struct.pack_into("<HH", end, 8, count, count)
        return data[:at] + bytes(end)
    size, offset = struct.unpack_from("<II", end, 12)
    struct.pack_into("<HH", end, 8, 0xFFFF, 0xFFFF)
    record = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, at, 1)
    return data[:at] + record + locator + bytes(end)


def declaring_size(data: bytes, name: str, size: int) -> bytes:
    """`data` with entry `name`'s uncompressed size in the central directory set to `size`."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46 : at + 46 + name_length].decode() == name:
            struct.pack_into("<I", out, at + 24, size)
            return bytes(out)
        at = out.find(b"PK\x01\x02", at + 4)
    raise ValueError(f"no entry {name!r}")
