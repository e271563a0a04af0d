"""Homeserver and logging configuration for the throw-away test Synapse.

Everything here is plain data: the YAML is written by hand (no
``--generate-config``), which keeps start-up fast and the settings explicit.
Rate-limit keys were checked against ``synapse/config/ratelimiting.py`` of
matrix-synapse 1.163.2.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Generous enough never to trigger in tests, small enough to stay a float.
_UNLIMITED: dict[str, float] = {"per_second": 10_000.0, "burst_count": 100_000}

# Synapse's own defaults for the event-sending limiter (rc_message).
SYNAPSE_DEFAULT_MESSAGE_LIMIT: dict[str, float] = {"per_second": 0.2, "burst_count": 10}

# Flat limiters: ``rc_<name>: {per_second, burst_count}``.
_FLAT_LIMITERS = (
    "rc_registration",
    "rc_registration_token_validity",
    "rc_joins_per_room",
    "rc_key_requests",
    "rc_3pid_validation",
    "rc_third_party_invite",
    "rc_admin_redaction",
    "rc_room_creation",
    "rc_media_create",
    "rc_delayed_event_mgmt",
    "rc_reports",
    "rc_user_directory",
    "rc_profile",
)

# Nested limiters: ``rc_<name>: {<sub>: {per_second, burst_count}}``.
_NESTED_LIMITERS: dict[str, tuple[str, ...]] = {
    "rc_login": ("address", "account", "failed_attempts"),
    "rc_joins": ("local", "remote"),
    "rc_invites": ("per_room", "per_user", "per_issuer"),
    "rc_presence": ("per_user",),
}


@dataclass(frozen=True)
class ServerPaths:
    """Files and directories of one homeserver instance inside its temp dir."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "homeserver.yaml"

    @property
    def log_config(self) -> Path:
        return self.root / "log_config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "homeserver.log"

    @property
    def stdio_log(self) -> Path:
        return self.root / "stdio.log"

    @property
    def database(self) -> Path:
        return self.root / "homeserver.db"

    @property
    def media_store(self) -> Path:
        return self.root / "media_store"

    @property
    def signing_key(self) -> Path:
        return self.root / "signing.key"

    @property
    def pid_file(self) -> Path:
        return self.root / "homeserver.pid"


def rate_limit_config(default_message_limits: bool) -> dict[str, Any]:
    """All ``rc_*`` settings raised; ``rc_message`` optionally left at default."""
    limits: dict[str, Any] = {name: dict(_UNLIMITED) for name in _FLAT_LIMITERS}
    for name, subkeys in _NESTED_LIMITERS.items():
        limits[name] = {sub: dict(_UNLIMITED) for sub in subkeys}
    limits["rc_message"] = dict(
        SYNAPSE_DEFAULT_MESSAGE_LIMIT if default_message_limits else _UNLIMITED
    )
    return limits


def log_config(log_file: Path) -> dict[str, Any]:
    """Python ``logging.config.dictConfig`` data: WARNING and up into a file."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(log_file),
                "encoding": "utf8",
            }
        },
        "root": {"level": "WARNING", "handlers": ["file"]},
    }


def homeserver_config(
    paths: ServerPaths,
    *,
    server_name: str,
    port: int,
    shared_secret: str,
    default_message_limits: bool,
) -> dict[str, Any]:
    """The complete ``homeserver.yaml`` content."""
    base_url = f"http://127.0.0.1:{port}"
    config: dict[str, Any] = {
        "server_name": server_name,
        "public_baseurl": f"{base_url}/",
        "pid_file": str(paths.pid_file),
        "report_stats": False,
        "listeners": [_http_listener(port)],
        "database": {"name": "sqlite3", "args": {"database": str(paths.database)}},
        "log_config": str(paths.log_config),
        "media_store_path": str(paths.media_store),
        "signing_key_path": str(paths.signing_key),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "enable_registration": False,
        "bcrypt_rounds": 4,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "allow_public_rooms_over_federation": False,
        "enable_metrics": False,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
    }
    config.update(rate_limit_config(default_message_limits))
    return config


def _http_listener(port: int) -> dict[str, Any]:
    """Single plain-HTTP listener on loopback (client API, admin API, federation).

    Federation resources are mounted but federation itself is disabled through
    ``federation_domain_whitelist: []`` and there is no separate federation port.
    """
    return {
        "port": port,
        "bind_addresses": ["127.0.0.1"],
        "type": "http",
        "tls": False,
        "x_forwarded": False,
        "resources": [{"names": ["client", "federation"], "compress": False}],
    }
