"""Organisations (issue 16): several forces in one département, on memory transports.

The Lozère of config/examples/lozere.yaml: the police alerts Mende (48095), the
gendarmerie the rest of the département (« dep:48 sauf 48095 »), the préfecture oversees
both; each has its officers' chat; the mayor of Mende sends prevention messages there.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Config, ConfigError, OrganisationConfig, RolesConfig, load_config
from bot.geo.perimeter import PerimeterError, parse_perimeter
from bot.i18n import Catalog, Translator
from bot.maintenance import export_csv
from bot.organisations import IMPLICIT, Organisations
from bot.place import place_text
from bot.storage.database import MIGRATIONS_DIR, Database
from tests.harness import ROOT, TestBot, shared_layer, test_config

GEND_OP, GEND_OFFICER, GEND_OFFICER2 = "telegram:101", "telegram:102", "telegram:103"
POLICE_OP, POLICE_OFFICER = "telegram:111", "telegram:112"
PREF_OP, PREF_OFFICER = "telegram:121", "telegram:122"
MAYOR = "telegram:131"  # the mayor of Mende
GEND_CHAT, POLICE_CHAT, PREF_CHAT = "officiers-gendarmerie", "officiers-police", "prefecture"
MENDE = "48095"


def lozere(database: Path) -> Config:
    organisations = [
        OrganisationConfig(
            key="gendarmerie", name="Groupement de gendarmerie de la Lozère",
            signature="Gendarmerie de la Lozère", territory="dep:48 sauf 48095",
            officers_channels={"telegram": GEND_CHAT}, operators=[GEND_OP],
            officers=[GEND_OFFICER, GEND_OFFICER2]),
        OrganisationConfig(
            key="police", name="Police nationale — Mende", signature="Police nationale — Mende",
            territory=MENDE, officers_channels={"telegram": POLICE_CHAT}, operators=[POLICE_OP],
            officers=[POLICE_OFFICER]),
        OrganisationConfig(
            key="prefecture", name="Préfecture de la Lozère",
            signature="Préfecture de la Lozère", territory="dep:48", oversees=True,
            officers_channels={"telegram": PREF_CHAT}, operators=[PREF_OP],
            officers=[PREF_OFFICER]),
    ]
    return test_config(database, roles=RolesConfig(mayors={MAYOR: MENDE}),
                       organisations=organisations)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TestBot]:
    running = await TestBot(lozere(tmp_path / "bot.sqlite3"), platforms=("telegram",)).start()
    try:
        yield running
    finally:
        await running.stop()


async def count_alerts(bot: TestBot) -> int:
    return int(await bot.core.services.db.fetchval("SELECT count(*) FROM alerts"))


# -- the perimeter grammar: « sauf » ------------------------------------------------------


def test_sauf_takes_communes_out() -> None:
    layer = shared_layer()
    whole = parse_perimeter("dep:48", layer)
    gendarmerie = parse_perimeter("dep:48 sauf 48095", layer)
    assert gendarmerie.communes == whole.communes - {MENDE}
    assert len(gendarmerie.communes) == 151
    assert parse_perimeter(gendarmerie.text, layer).communes == gendarmerie.communes
    t = Translator(Catalog.load(), "fr")
    assert place_text(t, gendarmerie.areas) == "toute la Lozère sauf Mende"
    assert parse_perimeter("Mende+10km SAUF Mende", layer).communes == \
        parse_perimeter("Mende+10km", layer).communes - {MENDE}
    with pytest.raises(PerimeterError) as error:
        parse_perimeter("Mende sauf 48000", layer)
    assert error.value.key == "perimeter.nothing_left"


# -- the territory rule --------------------------------------------------------------------


async def test_police_operator_refused_outside_mende_accepted_inside(bot: TestBot) -> None:
    refused = await bot.say(POLICE_OP, "/alerte vol Mende+5km : Vol de câbles au dépôt")
    assert refused.startswith("⛔ ")
    assert "communes hors de votre zone : " in refused and "Balsièges" in refused
    assert "Mende," not in refused  # Mende is theirs: only the communes outside are named
    assert "relève de : Groupement de gendarmerie de la Lozère" in refused
    assert await count_alerts(bot) == 0  # nothing stored
    accepted = await bot.say(POLICE_OP, "/alerte vol Mende : Vol de câbles au dépôt")
    assert "Alerte n°1 — aperçu" in accepted
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.organisation == "police"


async def test_gendarmerie_alert_decided_only_by_gendarmerie_or_prefecture(
        bot: TestBot) -> None:
    await bot.say(GEND_OP, "/alerte vol Florac Trois Rivières : Vol de matériel agricole")
    transport = bot.transports["telegram"]
    # Asked in its own channel with the buttons, in the overseer's read-only, not the police's.
    assert transport.posted[GEND_CHAT][0].message.choices
    assert "Demande de diffusion n°1" in transport.posted[PREF_CHAT][0].message.text
    assert transport.posted[PREF_CHAT][0].message.choices == ()
    assert transport.texts(POLICE_CHAT) == []
    refused = await bot.say(POLICE_OFFICER, "/valider 1", POLICE_CHAT)
    assert "relève de Groupement de gendarmerie de la Lozère" in refused
    assert (await bot.core.services.stores.alerts.get(1)).status == "pending"  # type: ignore[union-attr]
    assert "validée" in await bot.say(GEND_OFFICER, "/valider 1", GEND_CHAT)
    # The edit keeps the overseer's post without buttons.
    assert transport.posted[PREF_CHAT][0].current.choices == ()
    assert "Validée par" in transport.posted[PREF_CHAT][0].current.text
    # The préfecture's officer may decide another of the gendarmerie's alerts.
    await bot.say(GEND_OP, "/alerte vol Marvejols : Vol de gasoil")
    assert "validée" in await bot.say(PREF_OFFICER, "/valider 2", PREF_CHAT)


async def test_two_approvals_come_from_the_authorised_set(bot: TestBot) -> None:
    await bot.say(GEND_OP, "/alerte disparition Marvejols : Homme de 82 ans, veste rouge")
    assert "relève de" in await bot.say(POLICE_OFFICER, "/valider 1 parquet P-1", POLICE_CHAT)
    assert "(1/2)" in await bot.say(GEND_OFFICER, "/valider 1 parquet P-1", GEND_CHAT)
    assert "validée" in await bot.say(PREF_OFFICER, "/valider 1", PREF_CHAT)
    approvals = await bot.core.services.stores.alerts.approvals(1)
    assert {a.officer for a in approvals} == {GEND_OFFICER, PREF_OFFICER}


async def test_prefecture_alerts_anywhere(bot: TestBot) -> None:
    reply = await bot.say(PREF_OP, "/alerte prevention dep:48 : Épisode de grand froid")
    assert "Alerte n°1 — aperçu" in reply
    assert "validée" in await bot.say(PREF_OFFICER, "/valider 1", PREF_CHAT)
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.organisation == "prefecture"
    # Its request goes to its own channel only (no other organisation decides it).
    assert bot.transports["telegram"].texts(GEND_CHAT) == []


# -- mayors --------------------------------------------------------------------------------


async def test_mayor_message_limited_to_their_commune(bot: TestBot) -> None:
    await bot.enroll(MAYOR, "agriculteur", "Florac-Trois-Rivières")  # chose elsewhere
    outside = await bot.say(MAYOR, "/alerte prevention Mende+3km : Réunion publique")
    assert "hors de celles que vous représentez" in outside and await count_alerts(bot) == 0
    category = await bot.say(MAYOR, "/alerte cambriolage Mende : Cambriolage rue Basse")
    assert "un maire envoie des messages de prévention" in category
    assert "aperçu" in await bot.say(MAYOR, "/alerte prevention Mende : Réunion publique")
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.organisation == "police"  # covers Mende: decides
    assert "relève de" in await bot.say(GEND_OFFICER, "/valider 1", GEND_CHAT)
    assert "validée" in await bot.say(POLICE_OFFICER, "/valider 1", POLICE_CHAT)


async def test_mayors_receive_every_alert_touching_their_commune(bot: TestBot) -> None:
    await bot.enroll(MAYOR, "agriculteur", "Florac-Trois-Rivières")
    await bot.enroll("telegram:5", "commercant", "Florac-Trois-Rivières")
    await bot.say(POLICE_OP, "/alerte vol Mende pour commercant : Faux billets de 50 €")
    assert "diffusion à 1 destinataire" in await bot.say(POLICE_OFFICER, "/valider 1",
                                                         POLICE_CHAT)
    await bot.drain()
    assert any("Faux billets" in text for text in bot.inbox(MAYOR))
    assert not any("Faux billets" in text for text in bot.inbox("telegram:5"))


# -- scoped lists, journals, statistics ---------------------------------------------------


async def test_journal_alertes_and_stats_are_scoped(bot: TestBot) -> None:
    await bot.enroll("telegram:5", "commercant", "Mende")
    await bot.enroll("telegram:6", "commercant", "Marvejols")
    await bot.enroll("telegram:7", "agriculteur", "Marvejols")
    await bot.say(GEND_OP, "/alerte vol Florac Trois Rivières : Vol de matériel agricole")
    await bot.say(GEND_OFFICER, "/valider 1", GEND_CHAT)
    await bot.say(POLICE_OP, "/alerte escroquerie Mende : Faux plombiers")
    await bot.say(POLICE_OFFICER, "/valider 2", POLICE_CHAT)
    await bot.drain()
    assert await bot.say(POLICE_OFFICER, "/journal 1", POLICE_CHAT) == "Aucune alerte n°1."
    assert "Journal de l'alerte n°2" in await bot.say(POLICE_OFFICER, "/journal 2", POLICE_CHAT)
    assert "Journal de l'alerte n°1" in await bot.say(PREF_OFFICER, "/journal 1", PREF_CHAT)
    police = await bot.say(POLICE_OFFICER, "/stats", POLICE_CHAT)
    assert "Alertes diffusées : escroquerie 1 " in police and "vol" not in police
    # Mende's police count Mende's subscribers, not the whole Lozère's.
    assert "Mende 1" in police and "Marvejols" not in police and "Agriculteurs" not in police
    assert "1 actif" in police
    everyone = await bot.say(PREF_OFFICER, "/stats", PREF_CHAT)
    assert "escroquerie 1" in everyone and "vol 1" in everyone
    assert "Marvejols 2" in everyone and "Mende 1" in everyone and "3 actifs" in everyone
    listed = await bot.say(GEND_OFFICER, "/alertes", GEND_CHAT)
    assert "n°1" in listed and "n°2" not in listed
    assert "n°2" in await bot.say(PREF_OFFICER, "/alertes", PREF_CHAT)
    assert await bot.say(POLICE_OFFICER, "/cap 1", POLICE_CHAT) == "Aucune alerte n°1."


async def test_export_is_scoped_to_an_organisation(bot: TestBot, tmp_path: Path) -> None:
    await bot.say(GEND_OP, "/alerte vol Marvejols : Vol de matériel agricole")
    await bot.say(POLICE_OP, "/alerte escroquerie Mende : Faux plombiers")

    async def exported(organisation: str) -> list[str]:
        target = tmp_path / f"{organisation}.csv"
        await export_csv(bot.config, target, organisation=organisation)
        return [line.split(",")[0] for line in target.read_text("utf-8").splitlines()[1:]]

    assert await exported("police") == ["2"]
    assert await exported("gendarmerie") == ["1"]
    assert await exported("prefecture") == ["1", "2"]  # an overseer's export: every alert
    with pytest.raises(ConfigError, match="unknown 'douane'"):
        await exported("douane")


async def test_audit_records_the_organisation(bot: TestBot) -> None:
    await bot.say(POLICE_OP, "/alerte vol Mende+5km : Vol de câbles")
    await bot.say(POLICE_OP, "/alerte vol Mende : Vol de câbles")
    await bot.say(GEND_OFFICER, "/valider 1", GEND_CHAT)
    rows = await bot.core.services.db.fetchall(
        "SELECT actor, action, detail FROM audit_events ORDER BY id")
    found = {(row[0], row[1]): row[2] for row in rows}
    assert '"organisation": "police"' in found[(POLICE_OP, "alert.refused_territory")]
    assert '"organisation": "police"' in found[(POLICE_OP, "alert.submitted")]
    refusal = found[(GEND_OFFICER, "approval.refused_organisation")]
    assert '"alert_organisation": "police"' in refusal
    assert '"organisation": "gendarmerie"' in refusal


# -- signatures ----------------------------------------------------------------------------


async def test_every_copy_update_and_all_clear_is_signed_by_the_issuer(bot: TestBot) -> None:
    await bot.enroll("telegram:5", "commercant", "Mende")
    await bot.say(POLICE_OP, "/alerte vol Mende pour commercant : Vol à l'étalage en bande")
    await bot.say(POLICE_OFFICER, "/valider 1", POLICE_CHAT)
    await bot.drain()
    await bot.say(POLICE_OP, "/suite 1 : Deux individus interpellés")
    await bot.say(POLICE_OFFICER, "/valider 2", POLICE_CHAT)
    await bot.drain()
    await bot.say(POLICE_OP, "/fin 1")
    await bot.drain()
    copies = [post.current.text for post in bot.transports["telegram"].posted["5"]
              if "alerte n°1" in post.current.text]
    assert len(copies) >= 3  # the alert (edited « LEVÉE »), its update, the all-clear
    assert all("Police nationale — Mende · alerte n°1" in text for text in copies), copies
    assert not any("Gendarmerie" in text for text in copies)


async def test_cap_sender_is_the_issuing_organisation(bot: TestBot) -> None:
    await bot.say(POLICE_OP, "/alerte vol Mende : Vol de câbles")
    await bot.say(POLICE_OP, "/cap 1")
    posted = bot.transports["telegram"].posted[POLICE_OP.partition(":")[2]]
    document = posted[-1].message.attachment
    assert document is not None
    xml = document.data.decode("utf-8")
    assert "<sender>alerte-police</sender>" in xml
    assert "<senderName>Police nationale — Mende</senderName>" in xml


# -- configuration -------------------------------------------------------------------------


def test_configuration_mistakes_are_one_line(tmp_path: Path) -> None:
    def load(text: str) -> Config:
        path = tmp_path / "bot.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)

    one = ("organisations:\n  - {key: police, name: P, signature: P, territory: '48095',"
           " operators: ['telegram:1']}\n")
    assert load(one).organisations[0].key == "police"
    with pytest.raises(ConfigError, match="list staff under their organisation"):
        load(one + "roles:\n  officers: ['telegram:2']\n")
    with pytest.raises(ConfigError, match="listed twice"):
        load(one + one.removeprefix("organisations:\n"))
    with pytest.raises(ConfigError, match="already belongs to organisation 'police'"):
        load(one + "  - {key: gend, name: G, signature: G, territory: 'dep:48',"
             " officers: ['telegram:1']}\n")
    with pytest.raises(ConfigError, match=r"organisations\[0\].territory: required"):
        load("organisations:\n  - {key: p, name: P, signature: P}\n")
    bad_territory = load("organisations:\n  - {key: p, name: P, signature: P,"
                         " territory: 'Vesouk'}\n")
    with pytest.raises(ConfigError, match=r"organisations\[0\].territory: 'Vesouk'"):
        Organisations.build(bad_territory, shared_layer())


def test_lozere_example_loads_with_its_commune_layer() -> None:
    config = load_config(ROOT / "config/examples/lozere.yaml",
                         {"ALERTE_BOT_SECRET_KEY": "k" * 32, "TELEGRAM_BOT_TOKEN": "1:x"})
    organisations = Organisations.build(config, shared_layer())
    gendarmerie, police, prefecture = organisations.all
    assert (gendarmerie.key, police.key, prefecture.key) == ("gendarmerie", "police",
                                                               "prefecture")
    assert organisations.get("police").territory == {MENDE}
    assert len(organisations.get("gendarmerie").territory) == 151
    assert prefecture.oversees and len(prefecture.territory) == 152
    assert organisations.covering(MENDE) is organisations.get("police")
    assert organisations.mayor_communes("telegram:100000031") == {MENDE}


def test_without_organisations_one_implicit_organisation(tmp_path: Path) -> None:
    config = test_config(tmp_path / "bot.sqlite3")
    organisations = Organisations.build(config, shared_layer())
    assert organisations.implicit and [o.key for o in organisations.all] == [IMPLICIT]
    assert organisations.of("telegram:100") is organisations.all[0]
    assert organisations.signature(IMPLICIT) == config.signature


# -- migration -----------------------------------------------------------------------------


@pytest.mark.sqlite_only  # an SQLite file of the version before, upgraded in place
async def test_an_existing_database_joins_the_implicit_organisation(tmp_path: Path) -> None:
    path, previous = tmp_path / "old.sqlite3", tmp_path / "previous"
    previous.mkdir()  # the migrations of the version before organisations
    for migration in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if migration.name < "0012":
            shutil.copy(migration, previous / migration.name)
    await (await Database.open(path, previous)).close()
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO alerts (category, perimeter, perimeter_json, all_communities, body,"
            " facts_at, requested_by, request_platform, request_chat_id, status,"
            " required_approvals, created_at, expires_at)"
            " VALUES ('vol', 'Vesoul', '{}', 0, 'texte', '2026-11-24T13:00:00+00:00',"
            " 'telegram:100', 'telegram', '100', 'done', 1, '2026-11-24T13:00:00+00:00',"
            " '2026-11-25T13:00:00+00:00')")
        connection.execute("INSERT INTO granted_roles (identity, role, granted_by, granted_at)"
                           " VALUES ('telegram:7', 'operator', 'telegram:900', 't')")
    connection.close()
    database = await Database.open(path)
    try:
        assert await database.fetchval("SELECT organisation FROM alerts") == IMPLICIT
        assert await database.fetchval("SELECT organisation FROM granted_roles") == IMPLICIT
    finally:
        await database.close()
    bot = await TestBot(test_config(path), platforms=("telegram",)).start()
    try:  # the implicit organisation's officers see it, as before
        assert "Journal de l'alerte n°1" in await bot.say("telegram:200", "/journal 1")
    finally:
        await bot.stop()
