"""A throwaway PostgreSQL server for the tests and the benchmarks (initdb + pg_ctl).

PostgreSQL refuses to run as root, and CI runs as root: the cluster then belongs to the
``postgres`` system user (created by Debian's package), which runs initdb and pg_ctl through
``runuser``. The server listens on 127.0.0.1 only, trusts local connections, and is stopped
(and its folder removed) by ``stop``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "alerte"
SEARCHED = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when this machine has no PostgreSQL."""
    for folder in SEARCHED:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    if found is not None and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    folder: Path
    port: int
    bin: Path
    as_postgres: bool

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return subprocess.run([*prefix, *command], check=check, capture_output=True, text=True,
                              timeout=120)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m",
                      "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def start(fsync: bool = False, synchronous_commit: str = "on") -> Server:
    """A new cluster in a temporary folder, started; raises RuntimeError if it cannot be.
    Tests: no fsync (nothing survives the run anyway). The benchmarks: fsync on."""
    folder_bin = binaries()
    if folder_bin is None:
        raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    as_postgres = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="alerte-pg-"))
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
    server = Server(folder, _free_port(), folder_bin, as_postgres)
    data = folder / "data"
    try:
        server._run(str(folder_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", USER,
                    "-E", "UTF8", "--no-locale", "--no-sync")
        # Sockets in the folder (the default /var/run/postgresql may not exist or be ours).
        options = (f"-p {server.port} -c listen_addresses=127.0.0.1"
                   f" -c unix_socket_directories={folder} -c max_connections=200"
                   f" -c fsync={'on' if fsync else 'off'}"
                   f" -c synchronous_commit={synchronous_commit}"
                   f" -c full_page_writes={'on' if fsync else 'off'}")
        server._run(str(folder_bin / "pg_ctl"), "-D", str(data), "-l",
                    str(folder / "server.log"), "-o", options, "-w", "-t", "60", "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
        output = getattr(error, "stderr", "") or ""
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {output.strip()} {log.strip()}") from None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # pg_ctl -w waited; the TCP port may lag a little
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port)):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("PostgreSQL started but does not accept connections on 127.0.0.1")


TEMPLATE = f"alerte_template_{os.getpid()}"


class Databases:
    """One PostgreSQL database per SQLite path a test names (the same path, the same
    database: a bot restarted on its file finds its data), each a copy of a migrated
    template, dropped when the test ends."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url.rstrip("/")
        self.base = self.server_url.rsplit("/", 1)[0]
        self.by_path: dict[str, str] = {}
        self._count = itertools.count(1)
        self._made: list[str] = []  # copies of the template used by the current test
        self._empties: list[str] = []  # empty databases made by the current test
        self._free: list[str] = []  # copies emptied, for the next tests
        self._version = 0

    def url_of(self, name: str) -> str:
        return f"{self.base}/{name}"

    def _admin(self, sql: str) -> None:
        import psycopg
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def prepare_template(self) -> None:
        """The template, migrated (once a session: each test's copy costs a file copy)."""
        import asyncio

        from bot.storage.database import Database
        self._admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        self._admin(f"CREATE DATABASE {TEMPLATE}")

        async def migrate() -> int:
            database = await Database.open(self.url_of(TEMPLATE))
            try:
                return int(await database.fetchval("SELECT max(version) FROM schema_version"))
            finally:
                await database.close()
        self._version = asyncio.run(migrate())

    def for_path(self, path: str) -> str:
        if path not in self.by_path:
            if self._free:  # emptied by the previous test: cheaper than a new copy
                name = self._free.pop()
            else:
                name = f"t{os.getpid()}_{next(self._count)}"
                self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
            self._made.append(name)
            self.by_path[path] = self.url_of(name)
        return self.by_path[path]

    def empty(self) -> str:
        """A database with no table yet (what a first start creates)."""
        name = f"e{os.getpid()}_{next(self._count)}"
        self._admin(f"CREATE DATABASE {name}")
        self._empties.append(name)
        return self.url_of(name)

    def drop_all(self) -> None:
        """The test's databases: the template's copies emptied for the next test (their
        sessions ended first), the others dropped."""
        made, self._made = self._made, []
        empties, self._empties = self._empties, []
        self.by_path.clear()
        for name in made:
            try:
                self._reset(name)
                self._free.append(name)
            except Exception:
                with contextlib.suppress(Exception):
                    self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for name in empties:
            with contextlib.suppress(Exception):
                self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        """The emptied copies and the template: a server given by the caller keeps nothing."""
        self.drop_all()
        free, self._free = self._free, []
        for name in [*free, TEMPLATE]:
            with contextlib.suppress(Exception):
                self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _reset(self, name: str) -> None:
        import psycopg
        self._admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE datname = '{name}' AND pid <> pg_backend_pid()")
        with psycopg.connect(self.url_of(name), autocommit=True) as connection:
            version = connection.execute("SELECT max(version) FROM schema_version").fetchone()
            if version is None or version[0] != self._version:
                raise RuntimeError("the test changed the schema")
            tables = [r[0] for r in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_version'")]
            identities = connection.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND is_identity = 'YES'").fetchall()
            # DELETE, not TRUNCATE: a few rows each, and no new files; without the foreign
            # keys' triggers (this role owns the server), so the order does not matter.
            statements = ["SET session_replication_role = replica",
                          *(f'DELETE FROM "{t}"' for t in tables),
                          *(f'ALTER TABLE "{t}" ALTER COLUMN "{c}" RESTART' for t, c in identities),
                          "SET session_replication_role = DEFAULT"]
            connection.execute(";".join(statements))  # type: ignore[call-overload]


# Set by tests/conftest.py when the suite runs on PostgreSQL (--backend postgresql).
ACTIVE: Databases | None = None
