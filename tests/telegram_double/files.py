"""Uploaded and user-sent files, so that getFile and the file download URL work offline."""

from __future__ import annotations

import io
import itertools
import struct
from dataclasses import dataclass

from PIL import Image

# The sides of the boxes Telegram fits a photo's sizes into ("s", "m", "x", "y", "w"): a
# photo comes back as a list of sizes, smallest first, the largest at most 2560 px.
PHOTO_BOXES = (90, 320, 800, 1280, 2560)
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024  # sendPhoto by upload
MAX_PHOTO_SIDES = 10_000  # width + height
MAX_PHOTO_RATIO = 20
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile: bots download files up to 20 MB


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
        self._photos: dict[str, list[StoredFile]] = {}

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

    def add_photo(self, data: bytes, suffix: str, mime_type: str) -> list[StoredFile]:
        """A photo as Telegram keeps it: JPEG thumbnails in the smaller boxes, then the
        photo itself (its bytes as sent: the double does not recompress it). Each size has
        its own file_id; any of them sends the whole photo again."""
        sizes = [self.add("photo", thumbnail, "jpg", "image/jpeg")
                 for thumbnail in _thumbnails(data)]
        sizes.append(self.add("photo", data, suffix, mime_type))
        for size in sizes:
            self._photos[size.file_id] = sizes
        return sizes

    def photo_sizes(self, file_id: str) -> list[StoredFile] | None:
        """Every size of the photo a file_id names (None: not a photo's)."""
        return self._photos.get(file_id)

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


def _thumbnails(data: bytes) -> list[bytes]:
    """The smaller sizes of a photo, as JPEG: one per box smaller than its longer side."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            longest = max(image.size)
            boxes = [box for box in PHOTO_BOXES if box < longest]
            picture = image.convert("RGB")
    except Exception:  # not an image: sendPhoto refuses it before this is asked
        return []
    thumbnails = []
    for box in boxes:
        copy = picture.copy()
        copy.thumbnail((box, box))
        buffer = io.BytesIO()
        copy.save(buffer, "JPEG", quality=80)
        thumbnails.append(buffer.getvalue())
    return thumbnails


def photo_problem(data: bytes) -> str | None:
    """Why Telegram would refuse ``data`` as a photo (its Bad Request wording), if it would."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.verify()
    except Exception:
        return "IMAGE_PROCESS_FAILED"
    if width + height > MAX_PHOTO_SIDES or max(width, height) > MAX_PHOTO_RATIO * min(
            width, height):
        return "PHOTO_INVALID_DIMENSIONS"
    return None
