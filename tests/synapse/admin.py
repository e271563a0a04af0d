"""Blocking (urllib) helpers for the Synapse admin API.

Blocking on purpose: they are used by synchronous session fixtures, so they
work from any event loop (or none). Async callers go through
``asyncio.to_thread`` (see ``SynapseServer.register``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class MatrixUser:
    """A registered account. ``base_url`` lets client helpers find the server."""

    user_id: str
    access_token: str
    device_id: str
    password: str
    base_url: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


class AdminApiError(RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def http_json(
    method: str,
    url: str,
    body: JsonDict | None = None,
    *,
    token: str | None = None,
    timeout: float = 10.0,
) -> JsonDict:
    """One JSON request; raises ``AdminApiError`` on non-2xx answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as err:
        raise AdminApiError(method, url, err.code, err.read().decode(errors="replace")) from err
    return json.loads(payload) if payload else {}


def registration_mac(
    shared_secret: str, nonce: str, username: str, password: str, admin: bool
) -> str:
    """HMAC-SHA1 of ``nonce\\0user\\0password\\0admin|notadmin``."""
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, username, password):
        mac.update(part.encode())
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


def register_shared_secret(
    base_url: str, shared_secret: str, localpart: str, password: str, *, admin: bool
) -> MatrixUser:
    """Register via ``/_synapse/admin/v1/register`` (no login, no rate limit)."""
    url = f"{base_url}/_synapse/admin/v1/register"
    nonce = http_json("GET", url)["nonce"]
    body = {
        "nonce": nonce,
        "username": localpart,
        "password": password,
        "admin": admin,
        "mac": registration_mac(shared_secret, nonce, localpart, password, admin),
    }
    answer = http_json("POST", url, body)
    return MatrixUser(
        user_id=answer["user_id"],
        access_token=answer["access_token"],
        device_id=answer["device_id"],
        password=password,
        base_url=base_url,
    )


def override_ratelimit(
    base_url: str,
    admin_token: str,
    user_id: str,
    *,
    messages_per_second: int = 0,
    burst_count: int = 0,
) -> JsonDict:
    """Per-user rc_message override. ``messages_per_second=0`` means exempt.

    Synapse only accepts integers here. A zero rate also exempts the user from
    every limiter checked with a requester (joins, invites, room creation...).
    """
    quoted = urllib.parse.quote(user_id, safe="")
    url = f"{base_url}/_synapse/admin/v1/users/{quoted}/override_ratelimit"
    body = {"messages_per_second": messages_per_second, "burst_count": burst_count}
    return http_json("POST", url, body, token=admin_token)


def versions(base_url: str, timeout: float = 2.0) -> JsonDict:
    return http_json("GET", f"{base_url}/_matrix/client/versions", timeout=timeout)
