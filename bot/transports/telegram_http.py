"""HTTP for python-telegram-bot on aiohttp: PTB's ``BaseRequest`` extension point.

PTB's default, ``HTTPXRequest``, spends most of a broadcast's CPU in httpx/httpcore: about
330 requests/s with 32 in flight on our 2-core reference machine, against about 3,200 for an
aiohttp client on the same loopback server. At Telegram's paid-broadcast ceiling
(1,000 messages/s) httpx alone would be the bottleneck, so the bot's requests go through one
shared ``aiohttp.ClientSession`` instead (keep-alive connections, ``TCPConnector(limit=…)``
sized for the dispatcher's in-flight window).

PTB keeps doing everything else: building the parameters (``RequestData``), reading the
answer's status and JSON and raising ``RetryAfter``, ``Forbidden``, ``BadRequest``... from
it (``BaseRequest._request_wrapper``). Transport failures are mapped the way
``HTTPXRequest`` maps them, so ``telegram_errors`` sees the same exceptions: a timeout is
``TimedOut``, any other aiohttp error ``NetworkError``.

Bodies are sent as PTB sends them: ``application/x-www-form-urlencoded`` with JSON-encoded
values, or ``multipart/form-data`` when files are attached (maps, exports).

Timeouts: ``read_timeout`` bounds the wait for the answer (aiohttp ``sock_read``),
``connect_timeout`` a new connection (``sock_connect``), ``pool_timeout`` + ``connect_timeout``
the wait for a free connection and its set-up (``connect``). aiohttp has no separate write
timeout: ``write_timeout`` (``media_write_timeout`` for uploads) is added to the others in an
overall limit for the request, so a stalled upload still ends.
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.lru import Lru

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LONG_VALUE = 64  # characters: values at least this long have their encoding remembered
REMEMBERED_VALUES = 64


class AiohttpRequest(BaseRequest):
    """A ``telegram.request.BaseRequest`` on one shared ``aiohttp.ClientSession``.

    Use it for the bot's requests (``ApplicationBuilder().request(AiohttpRequest(...))``);
    ``connection_pool_size`` connections at most, kept alive between requests.
    """

    __slots__ = ("_connect_timeout", "_defaults", "_encoded", "_media_write_timeout",
                 "_pool_size", "_pool_timeout", "_read_timeout", "_session", "_write_timeout")

    def __init__(self, connection_pool_size: int = 64, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0,
                 media_write_timeout: float | None = 20.0) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._defaults = self._timeout(read_timeout, write_timeout, connect_timeout,
                                       pool_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._encoded: Lru[str, str] = Lru(REMEMBERED_VALUES)

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0,
                                             keepalive_timeout=60)
            # Proxies from the environment (HTTPS_PROXY...) as httpx honours them; looking
            # them up costs a little on each request, so only when some are set.
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT},
                timeout=self._defaults, trust_env=bool(urllib.request.getproxies()),
                auto_decompress=True)

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        timeout = self._defaults
        if files or not all(isinstance(value, DefaultValue) for value in
                            (read_timeout, write_timeout, connect_timeout, pool_timeout)):
            timeout = self._timeout(
                self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout,
                (self._media_write_timeout if files else self._write_timeout)
                if isinstance(write_timeout, DefaultValue) else write_timeout,
                self._connect_timeout if isinstance(connect_timeout, DefaultValue)
                else connect_timeout,
                self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout)
        body: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if files:
                body = _multipart(request_data)
            else:
                body = self._form(request_data.json_parameters)
                headers = FORM
        try:
            async with session.request(method, url, data=body, headers=headers,
                                       timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as error:  # aiohttp's own timeouts are TimeoutErrors too
            if isinstance(error, aiohttp.ConnectionTimeoutError):
                raise TimedOut(
                    "Pool timeout: no free connection (or none could be opened) in time. "
                    "Request was *not* sent to Telegram.") from error
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error

    def _form(self, parameters: dict[str, str]) -> bytes:
        """``urlencode(parameters)``, remembering the encoding of long values: a broadcast
        sends the same text and keyboard to every recipient, and percent-encoding them
        (French text, emoji) was a tenth of the bot's CPU per message."""
        parts = []
        for name, value in parameters.items():
            if len(value) < LONG_VALUE:
                parts.append(f"{quote_plus(name)}={quote_plus(value)}")
                continue
            encoded = self._encoded.get(value)
            if encoded is None:  # each prompt's keyboard passes through; a broadcast's stays
                encoded = quote_plus(value)
                self._encoded.put(value, encoded)
            parts.append(f"{quote_plus(name)}={encoded}")
        return "&".join(parts).encode("ascii")

    @staticmethod
    def _timeout(read: float | None, write: float | None, connect: float | None,
                 pool: float | None) -> aiohttp.ClientTimeout:
        parts = (read, write, connect, pool)
        total = None if any(part is None for part in parts) else sum(
            part for part in parts if part is not None)
        acquire = None if connect is None or pool is None else connect + pool
        return aiohttp.ClientTimeout(total=total, connect=acquire, sock_connect=connect,
                                     sock_read=read)


def _multipart(request_data: RequestData) -> aiohttp.FormData:
    """The parameters as form fields and the files as parts, as PTB's httpx request sends
    them (``attach://name`` references stay valid: the part names are PTB's)."""
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form
