"""/cap export, CAP files turned into drafts, and the map beside each approval request."""

from __future__ import annotations

from lxml import etree

from bot.cap import SCHEMA_PATH
from bot.domain import Attachment, ChatKind, ChatRef, Identity, Incoming
from tests.harness import OFFICERS, TestBot

OPERATOR, OFFICER = "telegram:100", "telegram:200"
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"


def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


async def last_attachment(bot: TestBot, chat: str) -> Attachment:
    attachment = bot.transports["telegram"].posted[chat][-1].message.attachment
    assert attachment is not None
    return attachment


async def test_cap_export_of_an_alert_and_its_all_clear(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte cambriolage Vesoul+2km pour commercant : Vitrine forcée")
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    assert "CAP 1.2" in await bot.say(OPERATOR, "/cap 1")
    document = etree.fromstring((await last_attachment(bot, "100")).data)
    assert schema().validate(document), schema().error_log
    assert document.findtext(f"{CAP_NS}msgType") == "Alert"
    codes = {g.findtext(f"{CAP_NS}value") for g in document.iter(f"{CAP_NS}geocode")}
    assert "70550" in codes and len(codes) > 1
    await bot.say(OPERATOR, "/fin 1")
    await bot.say(OPERATOR, "/cap 2")
    closing = etree.fromstring((await last_attachment(bot, "100")).data)
    assert schema().validate(closing)
    assert closing.findtext(f"{CAP_NS}msgType") == "Cancel"
    assert "fr.gendarmerie.70.alerte.1" in closing.findtext(f"{CAP_NS}references")
    assert "Aucune alerte n°9" in await bot.say(OPERATOR, "/cap 9")
    assert "réservée" in await bot.say("telegram:5", "/cap 1")


async def test_map_goes_with_the_approval_request(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte vol Vesoul+5km : Vol de gasoil")
    posts = bot.transports["telegram"].posted[OFFICERS]
    assert "Demande de diffusion n°1" in posts[0].message.text
    picture = posts[1].message.attachment
    assert picture is not None and picture.is_image and picture.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Carte de l'alerte n°1" in posts[1].message.text


def cap_file(status: str = "Actual", event: str = "Cambriolage") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>prefecture-70-2026-118</identifier><sender>pref70@example.org</sender>
  <sent>2026-11-24T13:55:00+01:00</sent><status>{status}</status><msgType>Alert</msgType>
  <scope>Public</scope>
  <info><category>Security</category><event>{event}</event><urgency>Immediate</urgency>
    <severity>Severe</severity><certainty>Observed</certainty>
    <headline>Cambriolages en série</headline><description>Deux hommes, fourgon blanc.</description>
    <area><areaDesc>Autour de Vesoul</areaDesc><circle>47.6236,6.1550 3</circle></area>
  </info></alert>""".encode()


async def send_file(bot: TestBot, who: str, data: bytes, name: str = "alerte.xml") -> str:
    identity = Identity.parse(who)
    incoming = Incoming(identity, ChatRef("telegram", identity.user_id), ChatKind.PRIVATE,
                        attachment=Attachment(name, "application/xml", data))
    return "\n".join(m.text for m in await bot.send(incoming))


async def test_cap_file_becomes_a_draft_then_an_alert(bot: TestBot) -> None:
    reply = await send_file(bot, OPERATOR, cap_file())
    assert "/alerte cambriolage " in reply
    assert "Deux hommes, fourgon blanc" in reply
    preview = await bot.press(OPERATOR, "Soumettre")
    assert "Alerte n°1 — aperçu" in preview and "Catégorie : Cambriolage" in preview
    communes = await bot.core.services.stores.alerts.communes(1)
    assert "70550" in communes


async def test_a_typed_yes_submits_the_draft(bot: TestBot) -> None:
    await send_file(bot, OPERATOR, cap_file())
    assert "Alerte n°1 — aperçu" in await bot.say(OPERATOR, "Oui")


async def test_bad_cap_files_are_refused_clearly(bot: TestBot) -> None:
    assert "XML" in await send_file(bot, OPERATOR, b"<not xml")
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x/>'
    reply = await send_file(bot, OPERATOR, doctype)
    assert reply and "passwd" not in reply and "root:" not in reply
    assert "que du texte" in await send_file(bot, "telegram:5", cap_file())  # not an operator
    exercise = await send_file(bot, OPERATOR, cap_file(status="Exercise", event="Inconnu"))
    assert "exercice" in exercise and "prevention" in exercise
