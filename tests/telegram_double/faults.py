"""Transient failures on demand: what Telegram's front-end nginx returns when the backend hiccups.

How python-telegram-bot 22.8 maps them (``BaseRequest._request_wrapper``):

* any 5xx (or other non-4xx) status -> ``telegram.error.NetworkError``; with the HTML body the
  message reads ``"Bad Gateway (502). Parsing the server response b'<html>...' failed"``
  (chained from ``TelegramError("Invalid server response")``), with a JSON body it is the
  ``description``. Neither is ``TimedOut``.
* a response slower than the client's read timeout (``delay``) -> ``telegram.error.TimedOut``
  (a NetworkError subclass) raised by PTB's HTTPX layer.
* ``deliver=True`` stores the message *before* failing - the "Telegram got it but the answer was
  lost" case that makes naive retry loops send duplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from aiohttp import web

Body = Literal["html", "json"]


@dataclass(slots=True)
class Fault:
    remaining: int
    status: int
    body: Body
    methods: frozenset[str] | None  # lower-case method names; None: every method
    delay: float
    deliver: bool

    def matches(self, method: str) -> bool:
        return self.methods is None or method in self.methods


class FaultPlan:
    """Pending faults, applied in the order they were scheduled."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def __bool__(self) -> bool:
        return bool(self._faults)

    def add(self, fault: Fault) -> None:
        if fault.remaining > 0:
            self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None


def fault_response(fault: Fault) -> web.Response:
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Error"
    if fault.body == "json":
        payload = {"ok": False, "error_code": fault.status, "description": phrase}
        return web.Response(
            status=fault.status, text=json.dumps(payload), content_type="application/json"
        )
    title = f"{fault.status} {phrase}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return web.Response(status=fault.status, text=page, content_type="text/html")
