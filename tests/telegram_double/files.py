"""Uploaded and user-sent files, so that getFile and the file download URL work offline."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str  # relative, as in getFile's result; served under base_file_url + token
    data: bytes
    mime_type: str


class FileStore:
    """file_id -> bytes. Ids look like Telegram's opaque strings but are deterministic."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def add(self, kind: str, data: bytes, suffix: str, mime_type: str) -> StoredFile:
        number = next(self._counter)
        stored = StoredFile(
            file_id=f"DBL{kind.upper()}{number:08d}AAQ",
            file_unique_id=f"AQ{number:08d}",
            file_path=f"{kind}s/file_{number}.{suffix}",
            data=data,
            mime_type=mime_type,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, read from its header; None if neither."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return (int(width), int(height)) if width and height else None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start-of-frame
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None
