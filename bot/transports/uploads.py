"""A file sent to many chats is uploaded once: the platform's reference is reused after.

An alert's photo goes to every recipient (20,000 of them, say): each transport keeps, per
file (its ``Attachment.digest``), what the platform gave back for the first upload — a
Telegram ``file_id``, a Matrix ``mxc://`` URI — and every later copy names that instead of
uploading the bytes again. The dispatcher sends many copies at once: the first to come
uploads while the others wait for its reference; if that upload fails (the recipient
blocked the bot), the next one uploads instead. References live in memory, for the run:
a restart uploads once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.lru import Lru

T = TypeVar("T")
KEPT = 64  # files remembered: those of the broadcasts in progress


class Uploads:
    def __init__(self, kept: int = KEPT) -> None:
        self._references: Lru[str, str] = Lru(kept)
        self._locks: dict[str, asyncio.Lock] = {}
        self.uploaded = 0  # uploads made (by key-less files too)
        self.reused = 0  # sends that named a file uploaded before

    def reference(self, digest: str) -> str | None:
        return self._references.get(digest) if digest else None

    async def send(self, digest: str, by_reference: Callable[[str], Awaitable[T]],
                   by_upload: Callable[[], Awaitable[tuple[T, str]]]) -> T:
        """``by_upload`` (returning what the send returns and the platform's reference)
        the first time a file is sent, ``by_reference`` every time after."""
        reference = self.reference(digest)
        if reference is None and digest:
            lock = self._locks.setdefault(digest, asyncio.Lock())
            async with lock:
                reference = self.reference(digest)
                if reference is None:
                    result, reference = await by_upload()
                    self.uploaded += 1
                    self._references.put(digest, reference)
                    self._locks.pop(digest, None)  # those waiting hold it still
                    return result
        if reference is None:  # a file without a key: each send uploads it
            self.uploaded += 1
            return (await by_upload())[0]
        self.reused += 1
        return await by_reference(reference)

    def forget(self, digest: str) -> None:
        """The platform no longer knows the reference: the next send uploads again."""
        self._references.pop(digest)
