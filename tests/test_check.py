"""The pre-flight check (``bot/check.py``) as a prefecture's IT person reads it: one line
per fact, PROBLEM lines for what would break the service, exit status 1 if any.

Telegram runs against the Bot API double, Matrix against the session's real Synapse, the
database on files in a temporary folder. Unreachable servers are closed loopback ports.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bot import check_matrix, check_telegram
from bot.check import run_checks
from bot.check_report import TIMEOUT
from bot.config import Config, MatrixConfig, RolesConfig, TelegramConfig
from bot.storage.database import MIGRATIONS_DIR, Database
from tests.harness import ROOT
from tests.synapse import client as mx
from tests.synapse.admin import MatrixUser
from tests.synapse.server import SynapseServer, free_port
from tests.telegram_double import TelegramDouble

# PTB reads its own deprecated int attributes; nothing to fix here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "7234567890:check-token-never-printed"
BOT_ID = 7234567890
BOT_NAME = "alertes70_bot"
OFFICERS = -1001234567890
OFFICER = 200
_prefixes = itertools.count(1)


async def check(config: Config) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = await run_checks(config, out, config_file=Path("config/bot.yaml"))
    text = out.getvalue()
    assert "Traceback" not in text
    return code, text.splitlines()


def problems(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("PROBLEM")]


def base_config(tmp_path: Path, **sections: Any) -> Config:
    return Config(database=str(tmp_path / "bot.sqlite3"), base_dir=str(ROOT),
                  roles=RolesConfig(officers=[f"telegram:{OFFICER}"]), **sections)


# -- the database ------------------------------------------------------------------------


async def database_at(path: Path, version: int) -> None:
    """A bot database at schema ``version`` (above the code's: as a newer bot leaves it)."""
    db = await Database.open(path)
    await db.close()
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("DELETE FROM schema_version WHERE version > ?", (version,))
        raw.executemany("INSERT INTO schema_version VALUES (?, 'future.sql', datetime('now'))",
                        [(v,) for v in range(latest() + 1, version + 1)])


def latest() -> int:
    return len(list(MIGRATIONS_DIR.glob("*.sql")))


async def test_database_newer_than_the_code(tmp_path: Path) -> None:
    await database_at(tmp_path / "bot.sqlite3", latest() + 2)
    code, lines = await check(base_config(tmp_path))
    assert code == 1
    assert problems(lines) == [f"PROBLEM database: {tmp_path / 'bot.sqlite3'}: schema version "
                               f"{latest() + 2}, but this code knows only up to {latest()}: the "
                               "database was written by a newer version of the bot (upgrade the "
                               "bot, or restore a backup made by this version)"]


async def test_older_database_is_reported_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    await database_at(path, 3)
    code, lines = await check(base_config(tmp_path))
    assert code == 0, lines
    assert (f"ok      database: {path} writable, schema version 3 of {latest()} (will be "
            "migrated at start)") in lines
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (3,)
    # Read without leaving -wal/-shm files behind, which would belong to the check's user.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.sqlite3"]


async def test_no_database_yet_and_not_a_database(tmp_path: Path) -> None:
    config = replace(base_config(tmp_path), database=str(tmp_path / "var" / "bot.sqlite3"))
    code, lines = await check(config)
    assert code == 0
    assert (f"ok      database: {tmp_path / 'var' / 'bot.sqlite3'}: does not exist yet; created "
            f"at start (schema version {latest()})") in lines
    assert ("warning console: no platform enabled: the bot would only talk in its own terminal "
            "(enable telegram or matrix for the service)") in lines
    (tmp_path / "bot.sqlite3").write_text("not SQLite " * 200)
    code, lines = await check(base_config(tmp_path))
    assert problems(lines) == [f"PROBLEM database: {tmp_path / 'bot.sqlite3'}: cannot be read as "
                               "a SQLite database (file is not a database)"]


# -- Telegram ----------------------------------------------------------------------------


@pytest.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(TOKEN, BOT_NAME) as running:
        running.user(OFFICER, "Officier")
        running.group(OFFICERS, "Officiers CORG 70", kind="supergroup", members=[OFFICER])
        yield running


def telegram_config(tmp_path: Path, double: TelegramDouble, **changes: Any) -> Config:
    telegram = TelegramConfig(enabled=True, token=TOKEN, base_url=double.base_url,
                              base_file_url=double.base_file_url, officers_chat_id=OFFICERS)
    return base_config(tmp_path, telegram=replace(telegram, **changes))


async def test_telegram_ready(tmp_path: Path, double: TelegramDouble) -> None:
    code, lines = await check(telegram_config(tmp_path, double))
    assert code == 0, lines
    assert lines[0] == ("ok      configuration: config/bot.yaml valid (telegram enabled; "
                        f"database {tmp_path / 'bot.sqlite3'})")
    assert f"ok      telegram: bot @{BOT_NAME} (id {BOT_ID}) — token accepted" in lines
    assert (f"ok      telegram: officers' chat {OFFICERS} « Officiers CORG 70 » (supergroup)"
            " — the bot may post") in lines
    assert lines[-1] == "no problem, 0 warnings: ready to start"
    assert not problems(lines)
    assert double.stats.requests["sendmessage"] == 0  # a check sends nothing


async def test_refused_token_is_one_problem_and_never_printed(tmp_path: Path,
                                                             double: TelegramDouble) -> None:
    wrong = "7234567890:wrong-token-never-printed"
    code, lines = await check(telegram_config(tmp_path, double, token=wrong))
    assert code == 1
    assert problems(lines) == ["PROBLEM telegram: Telegram refused the bot token; check "
                               "TELEGRAM_BOT_TOKEN (BotFather, /token)"]
    assert not any(wrong in line or TOKEN in line for line in lines)
    assert lines[-1].startswith("1 problem, 0 warnings")


async def test_officers_chat_without_the_bot(tmp_path: Path, double: TelegramDouble) -> None:
    double.remove_bot(OFFICERS, OFFICER)
    code, lines = await check(telegram_config(tmp_path, double))
    assert code == 1
    assert problems(lines) == [f"PROBLEM telegram: officers' chat {OFFICERS} « Officiers CORG 70 "
                               "» (supergroup): the bot is not a member (add it to the group)"]


async def test_officers_chat_where_the_bot_may_not_write(tmp_path: Path,
                                                        double: TelegramDouble) -> None:
    double.world.chat(OFFICERS).bot_can_send = False
    code, lines = await check(telegram_config(tmp_path, double))
    assert code == 1
    assert problems(lines)[0].endswith("the bot is restricted and may not send messages "
                                       "(lift the restriction)")


async def test_unknown_officers_chat(tmp_path: Path, double: TelegramDouble) -> None:
    code, lines = await check(telegram_config(tmp_path, double, officers_chat_id=-1009))
    assert code == 1
    assert problems(lines) == ["PROBLEM telegram: officers' chat -1009: unknown to the bot (Chat "
                               "not found); check telegram.officers_chat_id (-100… for a "
                               "supergroup) and that the bot was added to the group"]


async def test_officers_group_upgraded_to_a_supergroup(tmp_path: Path,
                                                      double: TelegramDouble) -> None:
    double.group(-400, "Officiers", members=[OFFICER])  # a basic group
    double.migrate(-400, OFFICERS - 1, OFFICER)
    code, lines = await check(telegram_config(tmp_path, double, officers_chat_id=-400))
    assert code == 1
    assert problems(lines) == [f"PROBLEM telegram: officers' chat -400 became supergroup "
                               f"{OFFICERS - 1}: set telegram.officers_chat_id to {OFFICERS - 1}"]


async def test_unreachable_bot_api_is_one_line_within_the_timeout(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/bot"  # nobody listens there
    telegram = TelegramConfig(enabled=True, token=TOKEN, base_url=url, officers_chat_id=OFFICERS)
    began = time.monotonic()
    code, lines = await check(base_config(tmp_path, telegram=telegram))
    assert time.monotonic() - began < TIMEOUT
    assert code == 1
    assert problems(lines) == [f"PROBLEM telegram: cannot reach the Bot API at {url} "
                               "(httpx.ConnectError: All connection attempts failed)"]


async def test_webhook_registered_elsewhere(tmp_path: Path, double: TelegramDouble) -> None:
    double.world.webhook = {"url": "https://staging.example.fr/telegram"}
    config = telegram_config(tmp_path, double, mode="webhook", webhook_secret="s3cret-path",
                             webhook_url="https://alerte.example.gouv.fr/telegram")
    code, lines = await check(config)
    assert code == 1
    assert ("PROBLEM telegram: Telegram sends updates to https://staging.example.fr/telegram, but "
            "telegram.webhook_url is https://alerte.example.gouv.fr/telegram; is another "
            "installation using this token? (0 update(s) waiting)") in lines
    double.world.webhook = {"url": "https://alerte.example.gouv.fr/telegram"}
    _, lines = await check(config)
    assert ("ok      telegram: webhook https://alerte.example.gouv.fr/telegram registered "
            "(0 update(s) waiting)") in lines


# -- Matrix, against the real Synapse ----------------------------------------------------


async def matrix_bot(server: SynapseServer, *, admin: bool = False) -> MatrixUser:
    return await server.register(f"check{next(_prefixes)}-bot", admin=admin)


async def officers_room(server: SynapseServer, bot: MatrixUser, *, join: bool = True,
                        invite: bool = True, encrypted: bool = False) -> str:
    officer = await server.register(f"{bot.localpart}-officer")
    room = await mx.create_room(officer, invite=[bot.user_id] if invite else [],
                                name="Officiers", encrypted=encrypted)
    if join:
        await mx.join(bot, room)
    return room


def matrix_config(tmp_path: Path, bot: MatrixUser, room: str, **changes: Any) -> Config:
    matrix = MatrixConfig(enabled=True, homeserver=bot.base_url, user_id=bot.user_id,
                          access_token=bot.access_token, device_id=bot.device_id,
                          officers_room=room)
    return base_config(tmp_path, matrix=replace(matrix, **changes))


def override_path(bot: MatrixUser) -> str:
    quoted = bot.user_id.replace("@", "%40").replace(":", "%3A")
    return f"/_synapse/admin/v1/users/{quoted}/override_ratelimit"


@pytest.mark.synapse
async def test_matrix_ready(tmp_path: Path, synapse: SynapseServer) -> None:
    bot = await matrix_bot(synapse, admin=True)  # an admin may read its own override
    await synapse.exempt(bot)
    room = await officers_room(synapse, bot)
    code, lines = await check(matrix_config(tmp_path, bot, room))
    assert code == 0, lines
    assert (f"ok      matrix: logged in as {bot.user_id} (device {bot.device_id}) — whoami ok"
            in lines)
    assert f"ok      matrix: officers' room {room} « Officiers » joined — the bot may post" in lines
    assert ("ok      matrix: exempt from Synapse's message rate limit (override_ratelimit: "
            "messages_per_second 0)") in lines
    assert not any(bot.access_token in line for line in lines)


@pytest.mark.synapse
async def test_matrix_rate_limit_not_exempt_or_unknown(tmp_path: Path,
                                                       synapse: SynapseServer) -> None:
    admin_bot = await matrix_bot(synapse, admin=True)
    code, lines = await check(matrix_config(tmp_path, admin_bot,
                                            await officers_room(synapse, admin_bot)))
    assert code == 1
    assert problems(lines) == [
        "PROBLEM matrix: rate-limit exemption missing: Synapse limits the bot to its rc_message "
        "(by default 0.2 msg/s after a burst of 10: about 100 minutes for 1,200 recipients); "
        f"ask the homeserver admin: POST {override_path(admin_bot)} with "
        '{"messages_per_second": 0, "burst_count": 0}']
    plain_bot = await matrix_bot(synapse)
    code, lines = await check(matrix_config(tmp_path, plain_bot,
                                            await officers_room(synapse, plain_bot)))
    assert code == 0, lines
    assert ("warning matrix: rate-limit exemption: unknown (the bot is not a server admin; ask "
            f"the homeserver admin to check GET {override_path(plain_bot)}: it should answer "
            "messages_per_second 0)") in lines


@pytest.mark.synapse
async def test_officers_room_not_joined(tmp_path: Path, synapse: SynapseServer) -> None:
    bot = await matrix_bot(synapse)
    stranger_room = await officers_room(synapse, bot, join=False, invite=False)
    code, lines = await check(matrix_config(tmp_path, bot, stranger_room))
    assert code == 1
    assert problems(lines) == [f"PROBLEM matrix: officers' room {stranger_room}: the bot has not "
                               f"joined it and is not invited (invite {bot.user_id} from the "
                               "room; the bot accepts at start)"]
    invited_room = await officers_room(synapse, bot, join=False)
    code, lines = await check(matrix_config(tmp_path, bot, invited_room))
    assert code == 0, lines
    assert (f"warning matrix: officers' room {invited_room}: invited, not joined yet; the bot "
            "joins at start (run the check again then, to see whether it may post)") in lines


@pytest.mark.synapse
async def test_officers_room_by_alias(tmp_path: Path, synapse: SynapseServer) -> None:
    bot = await matrix_bot(synapse)
    room = await officers_room(synapse, bot)
    officer = await synapse.register(f"{bot.localpart}-officer")
    alias = f"#{bot.localpart}-officiers:{synapse.server_name}"
    await mx.request(officer, "PUT", f"{mx.CLIENT_V3}/directory/room/{quote(alias)}",
                     {"room_id": room})
    _, lines = await check(matrix_config(tmp_path, bot, alias))
    assert (f"ok      matrix: officers' room {alias} ({room}) « Officiers » joined — the bot may "
            "post") in lines
    missing = f"#nowhere:{synapse.server_name}"
    code, lines = await check(matrix_config(tmp_path, bot, missing))
    assert code == 1
    assert problems(lines) == [f"PROBLEM matrix: officers' room {missing}: the alias cannot be "
                               f"resolved (M_NOT_FOUND: Room alias {missing} not found); check "
                               "matrix.officers_room"]


@pytest.mark.synapse
async def test_officers_room_where_the_bot_may_not_post(tmp_path: Path,
                                                        synapse: SynapseServer) -> None:
    bot = await matrix_bot(synapse)
    room = await officers_room(synapse, bot, encrypted=True)
    officer = await synapse.register(f"{bot.localpart}-officer")
    path = f"{mx.CLIENT_V3}/rooms/{room}/state/m.room.power_levels"
    levels = await mx.request(officer, "GET", path)
    levels["events"] = {**levels.get("events", {}), "m.room.message": 50}
    await mx.request(officer, "PUT", path, levels)
    code, lines = await check(matrix_config(tmp_path, bot, room))
    assert code == 1
    assert problems(lines) == [
        f"PROBLEM matrix: officers' room {room} « Officiers » is encrypted: the bot cannot read "
        "the officers' commands there (use an unencrypted room, docs/matrix.md §2 and §6)",
        f"PROBLEM matrix: officers' room {room} « Officiers »: the bot's power level 0 is below "
        "the 50 needed to send messages (raise it in the room's roles and permissions)"]


@pytest.mark.synapse
async def test_password_login_leaves_no_device(tmp_path: Path, synapse: SynapseServer) -> None:
    bot = await matrix_bot(synapse)
    room = await officers_room(synapse, bot)
    devices_before = await mx.request(bot, "GET", f"{mx.CLIENT_V3}/devices")
    config = matrix_config(tmp_path, bot, room, access_token="", password=bot.password)
    code, lines = await check(config)
    assert code == 0, lines
    assert any(line.startswith(f"ok      matrix: logged in as {bot.user_id} (temporary device ")
               for line in lines)
    assert ("warning matrix: no matrix.access_token: the bot logs in with the password at each "
            "start; prefer an access token (docs/matrix.md §1)") in lines
    assert await mx.request(bot, "GET", f"{mx.CLIENT_V3}/devices") == devices_before
    assert not any(bot.password in line for line in lines)


@pytest.mark.synapse
async def test_refused_matrix_credentials(tmp_path: Path, synapse: SynapseServer) -> None:
    bot = await matrix_bot(synapse)
    code, lines = await check(matrix_config(tmp_path, bot, "", access_token="syt_not-a-token"))
    assert code == 1
    assert problems(lines) == ["PROBLEM matrix: the homeserver refused the access token "
                               "(M_UNKNOWN_TOKEN: Invalid access token passed.); check "
                               "MATRIX_ACCESS_TOKEN"]
    config = matrix_config(tmp_path, bot, "", access_token="", password="wrong password")
    _, lines = await check(config)
    assert problems(lines) == ["PROBLEM matrix: the homeserver refused the password login "
                               "(M_FORBIDDEN: Invalid username or password); check "
                               "MATRIX_PASSWORD"]


# -- Telegram and Matrix together --------------------------------------------------------


async def test_no_officers_chat_is_a_warning_when_matrix_has_one(
        tmp_path: Path, double: TelegramDouble) -> None:
    homeserver = f"http://127.0.0.1:{free_port()}"
    matrix = MatrixConfig(enabled=True, homeserver=homeserver, user_id="@alertes:test",
                          access_token="syt_matrix-token-never-printed", officers_room="!o:test")
    config = replace(telegram_config(tmp_path, double, officers_chat_id=None), matrix=matrix)
    code, lines = await check(config)
    assert ("warning telegram: telegram.officers_chat_id is not set: approval requests reach "
            "the officers on matrix only") in lines
    [unreachable] = problems(lines)  # the homeserver, in one line
    assert unreachable.startswith(f"PROBLEM matrix: cannot reach the homeserver at {homeserver} (")
    assert code == 1
    without_matrix = replace(config, matrix=MatrixConfig())
    _, lines = await check(without_matrix)
    assert problems(lines) == ["PROBLEM telegram: telegram.officers_chat_id is not set and no "
                               "other platform has an officers' channel: nobody can approve an "
                               "alert (docs/telegram.md §3)"]


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A server that takes connections and requests, and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_silent_servers_cost_one_timeout(tmp_path: Path, silent_server: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (check_telegram, check_matrix):
        monkeypatch.setattr(module, "TIMEOUT", 0.5)
    telegram = TelegramConfig(enabled=True, token=TOKEN, base_url=f"{silent_server}/bot",
                              officers_chat_id=OFFICERS)
    matrix = MatrixConfig(enabled=True, homeserver=silent_server, user_id="@alertes:test",
                          access_token="syt_matrix-token-never-printed", officers_room="!o:test")
    began = time.monotonic()
    code, lines = await check(base_config(tmp_path, telegram=telegram, matrix=matrix))
    assert time.monotonic() - began < 2  # side by side, each stopped at its first timeout
    assert code == 1
    assert problems(lines) == [
        f"PROBLEM telegram: no answer from the Bot API at {silent_server}/bot within 0.5 s",
        f"PROBLEM matrix: no answer from the homeserver at {silent_server} within 0.5 s"]
