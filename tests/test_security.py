"""Privacy rights, authorization, flood protection, secrets, backups."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest

from bot import logs
from bot.config import PrivacyConfig, RolesConfig, ThrottleConfig
from bot.domain import ChatKind, ChatRef, Identity, Incoming
from bot.maintenance import backup, restore
from bot.roles import PERMISSIONS, Action, Role, RoleBook
from bot.storage.database import DatabaseError
from tests.harness import OFFICERS, TestBot, test_config

OPERATOR, OFFICER, ADMIN = "telegram:100", "telegram:200", "telegram:900"
ALICE = "telegram:4242"
ALERT = "/alerte cambriolage Vesoul pour commercant : Vitrine forcée"


async def broadcast(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    number = await bot.core.services.db.fetchval("SELECT max(id) FROM alerts")
    await bot.say(OFFICER, f"/valider {number}", chat=OFFICERS)
    await bot.drain()


# -- authorization -----------------------------------------------------------------


@pytest.mark.parametrize("roles", [set(c) for n in range(4)
                                   for c in itertools.combinations(
                                       [Role.ADMIN, Role.OPERATOR, Role.OFFICER], n)])
def test_role_action_table_is_exactly_what_the_book_allows(roles: set[Role]) -> None:
    who = "telegram:1"
    config = RolesConfig(admins=[who] if Role.ADMIN in roles else [],
                         operators=[who] if Role.OPERATOR in roles else [],
                         officers=[who] if Role.OFFICER in roles else [])
    book = RoleBook(config)
    held = roles | {Role.SUBSCRIBER}
    for action in Action:
        assert book.may(Identity.parse(who), action) == bool(held & PERMISSIONS[action]), action


def test_staff_actions_are_never_open_to_subscribers() -> None:
    for action in Action:
        if action is not Action.SUBSCRIBE:
            assert Role.SUBSCRIBER not in PERMISSIONS[action], action
    assert PERMISSIONS[Action.DECIDE_ALERT] == {Role.OFFICER}
    assert Role.OPERATOR not in PERMISSIONS[Action.DECIDE_ALERT]


async def test_every_privileged_command_refuses_and_audits_outsiders(bot: TestBot) -> None:
    privileged = [c for c in bot.core.core.router.registry
                  if Role.SUBSCRIBER not in c.allowed_roles()]
    assert len(privileged) >= 12
    for command in privileged:
        chat = "-1" if not command.in_private else None
        reply = await bot.say(ALICE, f"/{command.name} 1", chat=chat)
        assert "réservée" in reply, command.name
    refused = await bot.core.services.db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'command.refused'")
    assert refused == len(privileged)
    actors = await bot.core.services.db.fetchall("SELECT DISTINCT actor FROM audit_events")
    assert [row[0].startswith("pseudo:") for row in actors] == [True]


async def test_roles_granted_at_run_time_are_audited_and_persist(bot: TestBot) -> None:
    assert "réservée" in await bot.say(OPERATOR, "/role telegram:77 officier")
    assert "Usage" in await bot.say(ADMIN, "/role alice officier")
    assert "Usage" in await bot.say(ADMIN, "/role telegram:77 pilote")
    assert "maintenant officier" in await bot.say(ADMIN, "/role telegram:77 officier")
    await bot.say(OPERATOR, ALERT)
    await bot.restart()
    assert "diffusion" in await bot.say("telegram:77", "/valider 1", chat=OFFICERS)
    assert "n'est plus officier" in await bot.say(ADMIN, "/role telegram:77 -officier")
    assert "réservée" in await bot.say("telegram:77", "/valider 1", chat=OFFICERS)
    assert "configuration" in await bot.say(ADMIN, f"/role {OFFICER} -officier")
    events = await bot.core.services.db.fetchall(
        "SELECT actor, action, detail FROM audit_events WHERE action LIKE 'role.%' ORDER BY id")
    assert [(row[0], row[1]) for row in events] == [(ADMIN, "role.granted"),
                                                    (ADMIN, "role.revoked")]


async def test_roles_are_given_to_platform_ids_only(bot: TestBot) -> None:
    for name in ("telegram:@alice", "matrix:alice", "telegram:-1001234", "alice"):
        reply = await bot.say(ADMIN, f"/role {name} officier")
        assert "n'est pas un identifiant de plateforme" in reply, name
        assert "telegram:123456789, pas @pseudo" in reply and "Usage" in reply
    assert await bot.core.services.stores.roles.all() == []
    assert "maintenant officier" in await bot.say(ADMIN, "/role matrix:@alice:example.org officier")
    assert await bot.core.services.stores.roles.all() == [("matrix:@alice:example.org", "officer")]


# -- flood protection ----------------------------------------------------------------


async def test_flooding_gets_one_polite_answer_then_silence(tmp_path: Path) -> None:
    config = test_config(tmp_path / "db.sqlite3",
                         throttle=ThrottleConfig(messages_per_minute=20, burst=10))
    bot = await TestBot(config).start()
    try:
        replies = [await bot.say(ALICE, "/aide") for _ in range(12)]
        assert all("Commandes disponibles" in r for r in replies[:10])
        assert "Doucement" in replies[10] and replies[11] == ""
        bot.advance(seconds=6)  # two messages' worth of budget
        assert "Commandes disponibles" in await bot.say(ALICE, "/aide")
        for _ in range(12):  # staff are allowed five times more
            assert "Commandes" in await bot.say(OPERATOR, "/aide")
    finally:
        await bot.stop()


# -- malformed text ------------------------------------------------------------------


async def test_lone_surrogate_in_an_alert_is_replaced_and_said(bot: TestBot) -> None:
    """Platforms deliver JSON, where "\\ud800" alone is legal and decodes to a string
    SQLite cannot store: it used to give an internal error."""
    preview = await bot.say(OPERATOR, "/alerte cambriolage Vesoul : Vitrine \ud800 forcée")
    assert "aperçu" in preview and "Vitrine \ufffd forcée" in preview
    assert "1 caractère illisible remplacé par « \ufffd »" in preview
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.body == "Vitrine \ufffd forcée"
    assert "illisible" not in await bot.say(OPERATOR, "/alertes")  # said only when it happened


async def test_lone_surrogate_in_a_tip_is_replaced_and_the_tip_kept(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    await bot.press(ALICE, "information")
    thanks = await bot.say(ALICE, "Fourgon \udc80\udc81 blanc \ud83d\ude90")
    assert "transmise" in thanks and "2 caractères illisibles remplacés" in thanks
    tip = await bot.core.services.stores.tips.get(1)
    assert tip is not None and tip.body == "Fourgon \ufffd\ufffd blanc \U0001f690"
    assert "Fourgon \ufffd\ufffd blanc" in bot.officers()[-1]
    assert "n'est plus valable" in await bot.press_data(ALICE, "c:\udfff:yes")  # audited


# -- privacy -------------------------------------------------------------------------


async def test_my_data_returns_everything_held(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant, agriculteur", "Vesoul, Gray")
    await broadcast(bot)
    await bot.press(ALICE, "Reçu")
    reply = await bot.say(ALICE, "/mesdonnees")
    assert "(2 communes, 1 alerte reçue)" in reply
    attachment = bot.transports["telegram"].posted["4242"][-1].message.attachment
    assert attachment is not None and attachment.filename == "mes-donnees.json"
    data = json.loads(attachment.data)
    assert data["platform_user_id"] == "4242" and data["consent_version"] == "2026-11"
    assert [c["name"] for c in data["communes"]] == ["Gray", "Vesoul"]
    assert data["communities"] == ["agriculteur", "commercant"]
    assert data["alerts_received"][0]["alert_id"] == 1
    assert data["alerts_received"][0]["acknowledged_at"] is not None


REGISTER = Path(__file__).resolve().parent.parent / "docs" / "data-register.md"


def register_table(first_header: str) -> list[list[str]]:
    """The rows of the register's table whose first column is headed ``first_header``."""
    lines = REGISTER.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def named_fields(cell: str, db: sqlite3.Connection) -> list[str]:
    """« `tips.body`, `chat_id` » → tips.body, tips.chat_id; « `table.*` » → every column."""
    found, table = [], ""
    for name in re.findall(r"`([^`]+)`", cell):
        if "." in name:
            table, name = name.split(".", 1)
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        assert columns, f"no table {table} in the database"
        assert name == "*" or name in columns, f"{table}.{name} is not a column"
        found += [f"{table}.{c}" for c in (columns if name == "*" else [name])]
    return found


def export_paths(value: object, leaves: set[str], prefix: str = "") -> dict[str, list[object]]:
    """Each path of the export (``[]`` for list items) and the values found there."""
    if prefix in leaves or not isinstance(value, dict | list):
        return {prefix: [value]}
    items = value.items() if isinstance(value, dict) else [("[]", v) for v in value]
    paths: dict[str, list[object]] = {}
    for key, item in items:
        path = prefix + key if key == "[]" else f"{prefix}.{key}" if prefix else key
        for found, values in export_paths(item, leaves, path).items():
            paths.setdefault(found, []).extend(values)
    return paths


@pytest.mark.sqlite_only  # the schema read with PRAGMA table_info: the same on PostgreSQL
async def test_my_data_holds_every_field_of_the_register_and_nothing_else(
        bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    await bot.press(ALICE, "Reçu")
    await bot.press(ALICE, "information")
    await bot.send(Incoming(Identity.parse(ALICE), ChatRef("telegram", "4242"), ChatKind.PRIVATE,
                            text="Fourgon blanc", location=(47.6236, 6.1550)))
    await bot.say(OFFICER, "/repondre 1 Merci", chat=OFFICERS)
    # Came into a community through a partner's invitation, and asked to join a vetted one.
    created = await bot.say("telegram:900", "/invitation artisan : Chambre de Métiers")
    token = re.search(r"start=([A-Za-z0-9_-]{32})", created)
    assert token is not None, created
    assert "C'est fait" in await bot.say(ALICE, f"/start {token.group(1)}")
    assert "Demande n°1" in await bot.say(ALICE, "/rejoindre elu : adjointe au maire")
    await bot.press(ALICE, "information")  # left open: an unfinished conversation
    await bot.say(ALICE, "/mesdonnees")
    attachment = bot.transports["telegram"].posted["4242"][-1].message.attachment
    assert attachment is not None
    with sqlite3.connect(bot.config.database) as db:
        stored = {f for row in register_table("table.field") for f in named_fields(row[0], db)}
        exported: dict[str, str | None] = {}  # register field → export path (None: not)
        for_reading = set()  # export paths that are not stored about the person
        for left, right in register_table("field"):
            path = re.fullmatch(r"`([^`]+)`", right)
            if left.startswith("—"):
                assert path is not None, left
                for_reading.add(path.group(1))
            for field in [] if left.startswith("—") else named_fields(left, db):
                exported[field] = path.group(1) if path else None
    assert set(exported) == stored  # the access table covers the register, field by field
    keys = {path for path in exported.values() if path is not None} | for_reading
    paths = export_paths(json.loads(attachment.data), keys)
    assert set(paths) == keys  # nothing exported that the register does not list
    empty = [key for key in keys if all(v in (None, "", [], {}) for v in paths[key])]
    assert empty == [], "this subscriber has data in every field"


def personal_traces(database: Path | str, needles: list[str]) -> list[str]:
    """Every (table.column) holding one of the needles, in any text column of any table."""
    if str(database).startswith("postgresql://"):
        return postgresql_traces(str(database), needles)
    found = []
    with sqlite3.connect(database) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in [r[1] for r in db.execute(f"PRAGMA table_info({table})")]:
                for needle in needles:
                    hits = db.execute(f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" '
                                      "AS TEXT) LIKE ?", (f"%{needle}%",)).fetchone()[0]
                    if hits:
                        found.append(f"{table}.{column}")
    return found


def postgresql_traces(url: str, needles: list[str]) -> list[str]:
    import psycopg
    found = []
    with psycopg.connect(url) as db:
        columns = db.execute("SELECT table_name, column_name FROM information_schema.columns"
                             " WHERE table_schema = 'public'").fetchall()
        for table, column in columns:
            for needle in needles:
                hits = db.execute(f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS TEXT)'
                                  " LIKE %s", (f"%{needle}%",)).fetchone()
                if hits is not None and hits[0]:
                    found.append(f"{table}.{column}")
    return found


async def test_erasure_leaves_no_personal_data_in_any_table(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    await bot.press(ALICE, "information")
    await bot.share_location(ALICE, 47.6236, 6.1550)
    await bot.say(ALICE, "/alerte vol Vesoul : x")  # refused and audited
    assert personal_traces(bot.config.database, ["4242"])  # it is there before
    await bot.say(ALICE, "/oubli")
    assert "désinscrit" in await bot.press(ALICE, "Oui")
    assert personal_traces(bot.config.database, ["4242", "47.6236"]) == []
    counts = await bot.core.services.stores.deliveries.counts(1)
    assert counts.sent == 1  # the anonymous count stays


async def test_new_consent_version_asks_again(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.enroll("telegram:5", "commercant", "Vesoul")
    await bot.stop()
    bot.config = dataclasses.replace(bot.config, consent_version="2027-01")
    await bot.start()
    assert "a changé (version 2027-01)" in await bot.say(ALICE, "/communes")
    assert "accord est enregistré" in await bot.press(ALICE, "accepte")
    assert "Vesoul" in await bot.say(ALICE, "/communes")
    subscriber = await bot.core.services.stores.subscribers.get("telegram", "4242")
    assert subscriber is not None and subscriber.consent_version == "2027-01"
    await bot.say("telegram:5", "bonjour")
    assert "désinscrit" in await bot.press("telegram:5", "refuse")
    assert await bot.core.services.stores.subscribers.get("telegram", "5") is None


async def test_retention_purges_blocked_paused_and_old_message_ids(tmp_path: Path) -> None:
    config = test_config(tmp_path / "db.sqlite3", privacy=PrivacyConfig(
        blocked_retention_days=30, paused_retention_days=365, message_ids_retention_days=30))
    bot = await TestBot(config).start()
    try:
        for user in ("1", "2", "3"):
            await bot.enroll(f"telegram:{user}", "commercant", "Vesoul")
        await broadcast(bot)
        await bot.core.services.stores.subscribers.set_status_by_chat(
            "telegram", "2", "blocked", bot.clock.now())
        await bot.say("telegram:3", "/pause")
        await bot.say(OPERATOR, "/fin 1")
        await bot.drain()
        bot.advance(days=31)
        await bot.core.core.purge()
        stores = bot.core.services.stores
        assert await stores.subscribers.get("telegram", "2") is None
        assert await stores.subscribers.get("telegram", "3") is not None  # paused < 365 days
        ids = await bot.core.services.db.fetchval(
            "SELECT count(*) FROM deliveries WHERE message_id IS NOT NULL"
            " AND recipient_kind = 'subscriber'")
        assert ids == 0
        assert (await stores.deliveries.counts(1)).sent == 3
    finally:
        await bot.stop()


# -- secrets ---------------------------------------------------------------------------


def test_tokens_never_reach_the_logs() -> None:
    token, matrix_token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "syt_c2VjcmV0X3Rva2Vu"
    stream = io.StringIO()
    logs.configure(verbose=True, secrets=[token, matrix_token], stream=stream)
    try:
        log = logging.getLogger("httpx")
        log.warning("HTTP Request: POST https://api.telegram.org/bot%s/sendMessage", token)
        logging.getLogger("bot").error("matrix token %s refused", matrix_token)
        logging.getLogger("other").warning("unconfigured 987654321:ABCDEFGHIJKLMNOPQRSTUVWXYZ12345")
        try:
            raise RuntimeError(f"failed with {token}")
        except RuntimeError:
            logging.getLogger("bot").exception("crash")
    finally:
        logs.configure(verbose=False)
    output = stream.getvalue()
    assert token not in output and matrix_token not in output
    assert "ABCDEFGHIJKLMNOPQRSTUVWXYZ12345" not in output
    assert output.count("[secret]") == 4 and "level=ERROR" in output


# -- backups -------------------------------------------------------------------------


@pytest.mark.sqlite_only  # backup and restore copy SQLite's file
async def test_interrupted_broadcast_backed_up_and_restored_resumes(tmp_path: Path) -> None:
    bot = await TestBot(test_config(tmp_path / "live.sqlite3")).start()
    try:
        for user in ("1", "2", "3"):
            await bot.enroll(f"telegram:{user}", "commercant", "Vesoul")
        await bot.say(OPERATOR, ALERT)
        await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
        deliveries = bot.core.services.stores.deliveries
        first = await deliveries.claim_due("telegram", bot.clock.now(), 1)
        await bot.core.core.dispatcher.send_rows("telegram", first)
        await deliveries.claim_due("telegram", bot.clock.now(), 1)  # in flight at the crash
        assert backup(bot.config, tmp_path / "backup.sqlite3") == 0  # while running
    finally:
        await bot.stop()
    restored_config = test_config(tmp_path / "restored.sqlite3")
    assert restore(restored_config, tmp_path / "backup.sqlite3") == 0
    bot = await TestBot(restored_config).start()
    try:
        await bot.drain()
        counts = await bot.core.services.stores.deliveries.counts(1)
        assert (counts.sent, counts.pending, counts.sending) == (3, 0, 0)
        assert counts.maybe_duplicates == 1
        assert sorted(len(bot.inbox(f"telegram:{u}")) for u in ("1", "2", "3")) == [0, 1, 1]
    finally:
        await bot.stop()


def test_restore_refuses_garbage_and_keeps_the_previous_database(tmp_path: Path) -> None:
    config = test_config(tmp_path / "db.sqlite3")
    (tmp_path / "db.sqlite3").write_bytes(b"previous")
    (tmp_path / "garbage").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DatabaseError, match="not a bot database"):
        restore(config, tmp_path / "garbage")
    assert (tmp_path / "db.sqlite3").read_bytes() == b"previous"
    with pytest.raises(DatabaseError, match="no such backup"):
        restore(config, tmp_path / "missing")

