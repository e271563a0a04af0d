"""Request parameters, however the client encodes them.

Telegram accepts the query string, ``application/json``, ``x-www-form-urlencoded`` and
``multipart/form-data``. python-telegram-bot sends form-encoded bodies (multipart when a file
is attached) in which every value is a string and objects/arrays are JSON text; aiohttp clients
in benchmarks usually send JSON with native types. The accessors below accept both.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .errors import ApiError, bad_request

Params = dict[str, Any]

_TRUE = frozenset({"true", "True", "1"})


async def read_params(request: web.Request) -> Params:
    params: Params = dict(request.query) if request.query_string else {}
    if not request.body_exists:
        return params
    content_type = request.content_type
    if content_type == "application/json":
        body = await request.read()
        if body:
            try:
                decoded = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON body") from None
            if not isinstance(decoded, dict):
                raise bad_request("JSON body must be an object")
            params.update(decoded)
    elif content_type == "multipart/form-data":
        form = await request.post()
        params.update(form.items())  # file parts arrive as aiohttp.web.FileField
    else:  # form-urlencoded, PTB's default; parse_qsl beats request.post() on the hot path
        body = await request.read()
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


def opt_str(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def opt_int(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def opt_float(params: Params, name: str) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def opt_bool(params: Params, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, bool):
        return value
    return value in _TRUE if isinstance(value, str) else bool(value)


def opt_json(params: Params, name: str) -> Any:
    """An object/array parameter: native (JSON body) or JSON text (form body)."""
    value = params.get(name)
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise bad_request(f"can't parse {name} JSON object") from None


def required(value: Any, error: ApiError) -> Any:
    if value is None or value == "":
        raise error
    return value
