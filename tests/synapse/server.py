"""A real Synapse homeserver run as a subprocess on 127.0.0.1 for tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
from pathlib import Path
from types import TracebackType

import yaml

from .admin import (
    AdminApiError,
    JsonDict,
    MatrixUser,
    http_json,
    override_ratelimit,
    register_shared_secret,
    versions,
)
from .config import ServerPaths, homeserver_config, log_config

ADMIN_LOCALPART = "harness-admin"


class SynapseStartupError(RuntimeError):
    pass


def free_port() -> int:
    """A currently free TCP port on loopback (tiny race window, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_signing_key(path: Path) -> None:
    """Generate an ed25519 signing key the way ``--generate-keys`` would."""
    from signedjson.key import generate_signing_key, write_signing_keys

    key_id = "a_" + secrets.token_hex(2)
    with path.open("w") as handle:
        write_signing_keys(handle, [generate_signing_key(key_id)])


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"<{path.name} missing>"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class SynapseServer:
    """One homeserver: config generation, process lifecycle, account helpers.

    ``default_message_limits=True`` keeps rc_message at Synapse's default
    (0.2 msg/s, burst 10); every other limiter is raised in all cases.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        server_name: str = "test.local",
        default_message_limits: bool = False,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.paths = ServerPaths(Path(base_dir))
        self.server_name = server_name
        self.default_message_limits = default_message_limits
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.base_url = ""
        self._use_port(free_port())
        self.shared_secret = secrets.token_hex(16)
        self.pid: int | None = None
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._users: dict[str, MatrixUser] = {}
        self._users_lock = threading.Lock()

    # ----------------------------------------------------------- lifecycle
    def write_config(self) -> Path:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.media_store.mkdir(exist_ok=True)
        if not self.paths.signing_key.exists():
            write_signing_key(self.paths.signing_key)
        self.paths.log_config.write_text(yaml.safe_dump(log_config(self.paths.log)))
        config = homeserver_config(
            self.paths,
            server_name=self.server_name,
            port=self.port,
            shared_secret=self.shared_secret,
            default_message_limits=self.default_message_limits,
        )
        self.paths.config.write_text(yaml.safe_dump(config, sort_keys=False))
        return self.paths.config

    def start(self, port_attempts: int = 3) -> None:
        """Write the config, spawn Synapse, block until the client API answers.

        ``free_port`` is racy; if another process grabs the port first, retry on
        a new port (up to ``port_attempts`` times).
        """
        if self._process is not None:
            raise RuntimeError("Synapse already started")
        began = time.monotonic()
        for attempt in range(1, port_attempts + 1):
            try:
                self._start_once(began + self.startup_timeout)
                break
            except SynapseStartupError as err:
                if attempt == port_attempts or "Address already in use" not in str(err):
                    raise
                self._use_port(free_port())
        self.startup_seconds = time.monotonic() - began

    def _start_once(self, deadline: float) -> None:
        self.write_config()
        self._spawn()
        self._wait_until_ready(deadline)

    def _use_port(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.paths.config)]
        with self.paths.stdio_log.open("ab") as stdio:
            self._process = subprocess.Popen(
                command,
                cwd=self.paths.root,
                stdin=subprocess.DEVNULL,
                stdout=stdio,
                stderr=subprocess.STDOUT,
            )
        self.pid = self._process.pid

    def _wait_until_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                self._fail(f"Synapse exited early with code {code}")
            if self._answers_versions():
                return
            time.sleep(0.1)
        self.stop()
        self._fail(f"Synapse did not answer /versions within {self.startup_timeout:.0f}s")

    def _answers_versions(self) -> bool:
        try:
            versions(self.base_url, timeout=1.0)
        except (OSError, urllib.error.URLError, AdminApiError):
            return False
        return True

    def _fail(self, reason: str) -> None:
        raise SynapseStartupError(
            f"{reason}\n--- {self.paths.log} (tail) ---\n{tail(self.paths.log)}"
            f"\n--- {self.paths.stdio_log} (tail) ---\n{tail(self.paths.stdio_log)}"
        )

    def stop(self) -> None:
        """SIGTERM the recorded PID, SIGKILL it if it outlives ``stop_timeout``."""
        process, self._process = self._process, None
        if process is None or self.pid is None:
            return
        _signal(self.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            _signal(self.pid, signal.SIGKILL)
            process.wait(timeout=self.stop_timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> SynapseServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ accounts
    def register_user(
        self, localpart: str, admin: bool = False, password: str | None = None
    ) -> MatrixUser:
        """Register once per localpart and cache the token (logins are rate limited)."""
        with self._users_lock:
            cached = self._users.get(localpart)
            if cached is not None:
                return cached
            user = register_shared_secret(
                self.base_url,
                self.shared_secret,
                localpart,
                password or secrets.token_urlsafe(12),
                admin=admin,
            )
            self._users[localpart] = user
            return user

    async def register(self, localpart: str, admin: bool = False) -> MatrixUser:
        """Async wrapper around ``register_user`` (runs in a worker thread)."""
        return await asyncio.to_thread(self.register_user, localpart, admin)

    @property
    def admin(self) -> MatrixUser:
        """Server admin account, created on first use."""
        return self.register_user(ADMIN_LOCALPART, admin=True)

    def exempt_from_ratelimit(self, user: MatrixUser | str) -> None:
        """``override_ratelimit`` with 0 msg/s: the account is never rate limited."""
        self.set_ratelimit(user, messages_per_second=0, burst_count=0)

    def set_ratelimit(
        self, user: MatrixUser | str, *, messages_per_second: int, burst_count: int
    ) -> None:
        user_id = user if isinstance(user, str) else user.user_id
        override_ratelimit(
            self.base_url,
            self.admin.access_token,
            user_id,
            messages_per_second=messages_per_second,
            burst_count=burst_count,
        )

    async def exempt(self, user: MatrixUser | str) -> None:
        await asyncio.to_thread(self.exempt_from_ratelimit, user)

    def uploads_by(self, user: MatrixUser | str) -> list[JsonDict]:
        """The files an account put in the media repository (the admin API's list)."""
        user_id = user if isinstance(user, str) else user.user_id
        quoted = urllib.parse.quote(user_id, safe="")
        answer = http_json("GET", f"{self.base_url}/_synapse/admin/v1/users/{quoted}/media",
                           token=self.admin.access_token)
        return list(answer.get("media", []))

    async def media_of(self, user: MatrixUser | str) -> list[JsonDict]:
        return await asyncio.to_thread(self.uploads_by, user)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
