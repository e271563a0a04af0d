"""Operator alerts, officers' decisions, groups."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.storage.deliveries import Reach
from tests.harness import OFFICERS, TestBot

OPERATOR = "telegram:100"  # also an officer: may approve others' alerts, never their own
OFFICER, OFFICER2 = "telegram:200", "telegram:201"
ADMIN = "telegram:900"
ALERT = "/alerte cambriolage Vesoul+5km pour commercant : Vitrine forcée rue Carnot"


async def status(bot: TestBot, alert_id: int = 1) -> str:
    alert = await bot.core.services.stores.alerts.get(alert_id)
    assert alert is not None
    return alert.status


async def audited(bot: TestBot, action: str) -> int:
    return int(await bot.core.services.db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = ?", (action,)))


async def test_preview_shows_communes_reach_and_text(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.enroll("matrix:@bob:test", "commercant", "Noidans-lès-Vesoul")
    bot.platform_names[OPERATOR] = "Adjudant Durand"
    preview = await bot.say(OPERATOR, ALERT)
    assert "Alerte n°1 — aperçu" in preview
    assert "Catégorie : Cambriolage" in preview
    assert "Périmètre : Vesoul et 5 km alentour — 32 communes : " in preview
    # The communes typed first, then the most populous: the operator sees the target.
    assert "32 communes : Vesoul, Échenoz-la-Méline, Vaivre-et-Montoille, Noidans-lès-Vesoul," \
        in preview
    assert "Portée : 2 abonnés, 0 groupe," in preview
    assert "Vitrine forcée rue Carnot" in preview
    assert "Public : Commerçants" in preview
    request = bot.officers()[-2]  # the map follows it
    assert "Demande de diffusion n°1 — par Adjudant Durand, le 24/11 à 14:00" in request
    assert "telegram:100" not in request
    # The same request on Matrix, its commands as Element users type them.
    assert request.endswith("/valider 1 · /refuser 1 <motif>")
    assert bot.officers("matrix")[-2] == request.replace("/valider", "!valider").replace(
        "/refuser", "!refuser")
    assert await status(bot) == "pending"


async def test_non_operator_is_refused_and_audited(bot: TestBot) -> None:
    assert "réservée" in await bot.say("telegram:1", ALERT)
    assert "réservée" in await bot.say(OFFICER, ALERT)
    assert await audited(bot, "command.refused") == 2
    assert await bot.core.services.db.fetchval("SELECT count(*) FROM alerts") == 0


async def test_bad_alert_commands_each_get_a_clear_reply(bot: TestBot) -> None:
    cases = {
        "/alerte vols Vesoul : x": "Catégorie inconnue",
        "/alerte cambriolage Vesouk : x": "Vesoul",
        "/alerte cambriolage Vesoul+0km : x": "rayon",
        "/alerte cambriolage Vesoul+-3km : x": "",
        "/alerte cambriolage Vesoul+500km : x": "200",
        "/alerte cambriolage Vesoul :   ": "vide",
        "/alerte cambriolage Vesoul pour pilotes : x": "Communauté inconnue",
        "/alerte cambriolage Vesoul le texte sans deux-points": "Il manque le texte",
        "/alerte cambriolage Vesoul depuis 25:10 : x": "Heure impossible",
        "/alerte cambriolage : x": "Il manque le périmètre",
        "/alerte cambriolage dep:99 : x": "",
        f"/alerte cambriolage Vesoul : {'x' * 4001}": "trop long",
    }
    for command, expected in cases.items():
        reply = await bot.say(OPERATOR, command)
        assert expected.lower() in reply.lower(), (command, reply)
        assert "aperçu" not in reply, command
    assert await bot.core.services.db.fetchval("SELECT count(*) FROM alerts") == 0


async def test_perimeter_forms(bot: TestBot) -> None:
    for perimeter in ("Vesoul, Gray", "70550", "70000", "47.62,6.15+5km", "dep:70",
                      '{"type": "Polygon", "coordinates": [[[6.1, 47.6], [6.2, 47.6], '
                      '[6.2, 47.65], [6.1, 47.65], [6.1, 47.6]]]}'):
        reply = await bot.say(OPERATOR, f"/alerte vol {perimeter} : Vol de gasoil")
        assert "aperçu" in reply, (perimeter, reply)


def square_around(lat: float, lon: float, half: float, points: int = 1) -> str:
    """A GeoJSON square; ``points`` per side make it as long as operators' drawings."""
    side = [i / points for i in range(points)]
    ring = ([[lon - half + 2 * half * f, lat - half] for f in side]
            + [[lon + half, lat - half + 2 * half * f] for f in side]
            + [[lon + half - 2 * half * f, lat + half] for f in side]
            + [[lon - half, lat + half - 2 * half * f] for f in side])
    ring.append(ring[0])
    return json.dumps({"type": "Feature", "properties": {"nom": "zone pour la foire : nord"},
                       "geometry": {"type": "Polygon", "coordinates": [ring]}})


async def test_geojson_alert_reads_as_a_zone_around_a_commune(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Gray")
    zone = square_around(47.445, 5.59, 0.03, points=60)  # Gray, about 6,000 characters
    preview = await bot.say(OPERATOR, f"/alerte vol {zone} : Vol de gasoil")
    assert "aperçu" in preview
    count = len(await bot.core.services.stores.alerts.communes(1))
    assert count > 1
    assert f"⚠️ Vol — zone tracée autour de Gray ({count} communes)" in preview
    assert "coordinates" not in preview
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    delivered = bot.inbox("telegram:1")[-1]
    assert delivered.startswith(f"⚠️ Vol — zone tracée autour de Gray ({count} communes)")
    assert len(delivered) < 300
    assert "zone tracée autour de Gray" in await bot.say(OPERATOR, "/alertes")


async def test_geojson_perimeter_takes_pour_like_the_others(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Gray")
    await bot.enroll("telegram:2", "agriculteur", "Gray")
    zone = square_around(47.445, 5.59, 0.01)
    preview = await bot.say(OPERATOR, f"/alerte vol {zone} pour commercant : Vol de gasoil")
    assert "aperçu" in preview and "Public : Commerçants" in preview, preview
    assert "Portée : 1 abonné," in preview
    assert await bot.core.services.stores.alerts.communities(1) == ["commercant"]
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.body == "Vol de gasoil"
    assert alert.perimeter.startswith("zone tracée autour de Gray (")
    registered = await bot.say(ADMIN, f"/groupe {zone} pour commercant", chat="-5")
    assert "il recevra les alertes pour zone tracée autour de Gray (" in registered
    assert "communautés : Commerçants" in registered


async def test_approval_broadcasts_and_reports(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.enroll("telegram:2", "agriculteur", "Vesoul")
    await bot.enroll("telegram:3", "commercant", "Gray")
    await bot.say(OPERATOR, ALERT)
    bot.platform_names[OFFICER] = "Martin Dupont"  # Telegram's first and last name
    reply = await bot.press(OFFICER, "Valider", chat=OFFICERS)
    assert "diffusion à 1 destinataire" in reply
    for platform in ("telegram", "matrix"):  # the same words in every officers' channel
        request = bot.transports[platform].posted[OFFICERS][0].current.text
        assert "Validée par Martin Dupont" in request
    assert "validée" in bot.inbox(OPERATOR)[-1]
    await bot.drain()
    assert "Vitrine forcée rue Carnot" in bot.inbox("telegram:1")[-1]
    assert not any("Vitrine" in t for t in bot.inbox("telegram:2") + bot.inbox("telegram:3"))
    assert await status(bot) == "done"
    report = bot.officers()[-1]
    assert "Rapport alerte n°1 : 1 envoyé, 0 échec, 0 bloqué sur 1" in report
    assert report in bot.inbox(OPERATOR)
    transitions = await bot.core.services.stores.alerts.transitions(1)
    assert [t[0] for t in transitions] == ["pending", "approved", "broadcasting", "done"]


async def test_requester_cannot_approve_own_alert(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    assert "un autre officier" in await bot.press(OPERATOR, "Valider", chat=OFFICERS)
    assert "un autre officier" in await bot.say(OPERATOR, "/valider 1", chat=OFFICERS)
    assert await status(bot) == "pending"
    assert await audited(bot, "approval.refused_self") == 2


async def test_non_officer_button_press_is_refused(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    data = bot.choice_data(OFFICER, "Valider", chat=OFFICERS)
    # A press is not a command they typed: nothing said in the channel about it.
    assert await bot.press_data("telegram:1", data, chat=OFFICERS) == ""
    assert "réservée" in await bot.say("telegram:1", "/valider 1", chat=OFFICERS)
    assert await status(bot) == "pending"
    assert await audited(bot, "approval.refused_role") == 1


async def test_a_refused_press_is_answered_privately_or_not_at_all(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.say(OPERATOR, ALERT)
    approve = bot.choice_data(OFFICER, "Valider", chat=OFFICERS)
    channel = len(bot.officers())
    assert await bot.press_data("telegram:1", approve, chat=OFFICERS) == ""
    assert "Seuls les officiers" in bot.inbox("telegram:1")[-1]  # in their own chat
    assert await bot.press_data("telegram:1", "garbage", chat=OFFICERS) == ""
    assert "n'est plus valable" in bot.inbox("telegram:1")[-1]
    assert await bot.press_data("telegram:7", approve, chat=OFFICERS) == ""  # no chat: silence
    assert len(bot.officers()) == channel  # nothing said in the officers' channel
    assert "réservée" not in "\n".join(bot.officers())
    assert await audited(bot, "approval.refused_role") == 2
    assert await status(bot) == "pending"


async def test_decisions_on_missing_or_finished_alerts(bot: TestBot) -> None:
    assert "Aucune alerte n°42" in await bot.say(OFFICER, "/valider 42", chat=OFFICERS)
    await bot.say(OPERATOR, ALERT)
    old_button = bot.choice_data(OFFICER2, "Refuser", chat=OFFICERS)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    reply = await bot.press_data(OFFICER2, old_button, chat=OFFICERS)
    assert "n'est plus en attente" in reply
    assert "Usage" in await bot.say(OFFICER, "/valider", chat=OFFICERS)
    assert "Usage" in await bot.say(OFFICER, "/valider 1 peut-être", chat=OFFICERS)


async def test_rejection_needs_a_reason_and_tells_the_requester(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    assert "motif" in await bot.say(OFFICER, "/refuser 1", chat=OFFICERS)
    assert await status(bot) == "pending"
    assert "refusée" in await bot.say(OFFICER, "/refuser 1 faits non confirmés", chat=OFFICERS)
    assert await status(bot) == "rejected"
    assert "refusée : faits non confirmés" in bot.inbox(OPERATOR)[-1]
    # Nobody named this officer (no configured name, no platform name): their role.
    assert "Refusée par un officier" in bot.transports["telegram"].posted[OFFICERS][0].current.text
    assert bot.transports["telegram"].posted[OFFICERS][0].current.choices == ()


async def test_missing_person_needs_two_distinct_officers_and_reaches_everyone(
        bot: TestBot) -> None:
    await bot.enroll("telegram:1", "agriculteur", "Vesoul")
    await bot.enroll("telegram:2", "citoyen", "Vesoul")
    preview = await bot.say(OPERATOR, "/alerte disparition Vesoul pour commercant : "
                                      "Homme de 82 ans, manteau bleu")
    assert "toutes les communautés" in preview and "2 validations" in preview
    assert "parquet" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    assert "parquet" in await bot.press(OFFICER, "Valider", chat=OFFICERS)
    assert "(1/2)" in await bot.say(OFFICER, "/valider 1 parquet PR-70-2026/118",
                                    chat=OFFICERS)
    assert "déjà prononcé" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    assert await status(bot) == "pending"
    assert "diffusion à 2" in await bot.say(OFFICER2, "/valider 1", chat=OFFICERS)
    await bot.drain()
    delivered = bot.transports["telegram"].posted["1"][-1].message
    assert "Homme de 82 ans" in delivered.text
    assert delivered.tone.value == "protected"
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.prosecutor_ref == "PR-70-2026/118"


async def test_stale_facts_need_an_explicit_override(bot: TestBot) -> None:
    # 14:00 in Paris now; facts at 12:30 are 90 minutes old, over the 60-minute rule.
    preview = await bot.say(OPERATOR, "/alerte vol Vesoul depuis 12:30 : Vol de câble")
    assert "Faits de plus de 60 min" in preview
    assert "forcer" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    assert await status(bot) == "pending"
    assert "diffusion" in await bot.say(OFFICER, "/valider 1 forcer", chat=OFFICERS)
    assert await status(bot) == "broadcasting"


async def test_facts_become_stale_while_pending(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte vol Vesoul depuis 13:30 : Vol de câble")
    bot.advance(minutes=45)
    assert "forcer" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)


async def test_facts_before_midnight_mean_yesterday(bot: TestBot) -> None:
    bot.advance(hours=10, minutes=10)  # 00:10 in Paris
    reply = await bot.say(OPERATOR, "/alerte vol Vesoul depuis 23:50 : Vol")
    assert "Faits : le 24/11 à 23:50" in reply
    assert "Faits : hier vers 23:50 (il y a 20 min)" in reply  # the copy's own words
    assert "Faits de plus" not in reply


async def test_guided_alert(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "artisan", "Gray")
    assert "catégorie" in await bot.say(OPERATOR, "/alerte")
    assert "périmètre" in await bot.press(OPERATOR, "Escroquerie")
    assert "« Grai » : commune introuvable" in await bot.say(OPERATOR, "Grai+2km")
    assert "communautés" in await bot.press(OPERATOR, "Gray — 70100")
    await bot.press(OPERATOR, "Artisans")
    assert "Depuis quand" in await bot.press(OPERATOR, "Valider")
    assert "Heure non comprise" in await bot.say(OPERATOR, "ce matin")
    assert "Texte" in await bot.press(OPERATOR, "Maintenant")
    assert "Vérifiez" in await bot.say(OPERATOR, "Faux billets de 50 € chez les artisans")
    preview = await bot.press(OPERATOR, "Soumettre")
    assert "Alerte n°1 — aperçu" in preview and "Public : Artisans" in preview
    assert "Portée : 1 abonné," in preview


async def test_guided_alert_refuses_a_forged_community(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte")
    await bot.press(OPERATOR, "Escroquerie")
    await bot.say(OPERATOR, "Gray")
    nonce = bot.choice_data(OPERATOR, "Artisans").split(":")[1]
    forged = f"c:{nonce}:t:<i>inconnus</i>"
    assert "n'est plus valable" in await bot.press_data(OPERATOR, forged)
    await bot.press(OPERATOR, "Artisans")
    await bot.press(OPERATOR, "Valider")
    await bot.press(OPERATOR, "Maintenant")
    await bot.say(OPERATOR, "Faux billets")
    await bot.press(OPERATOR, "Soumettre")
    assert await bot.core.services.stores.alerts.communities(1) == ["artisan"]


async def test_alert_list(bot: TestBot) -> None:
    assert "aucune alerte" in await bot.say(OPERATOR, "/alertes")
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/refuser 1 doublon", chat=OFFICERS)
    await bot.say(OPERATOR, "/alerte vol Gray : Vol de vélo")
    listing = await bot.say(OPERATOR, "/alertes")
    assert listing.index("n°2") < listing.index("n°1")
    assert "refusée" in listing and "en attente" in listing


async def test_group_registration_and_delivery(bot: TestBot) -> None:
    assert "réservée" in await bot.say("telegram:1", "/groupe Vesoul", chat="-500")
    assert "dans un groupe" in await bot.say(ADMIN, "/groupe Vesoul")
    reply = await bot.say(ADMIN, "/groupe@alerte_bot Vesoul+2km pour commercant", chat="-500")
    assert "Groupe inscrit" in reply and "Commerçants" in reply
    assert "Commune inconnue" in await bot.say(ADMIN, "/groupe Vesouk", chat="-501")
    await bot.say(ADMIN, "/groupe Gray pour agriculteur", chat="-502")
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    assert "Vitrine forcée" in bot.transports["telegram"].texts("-500")[-1]
    assert not any("Vitrine" in t for t in bot.transports["telegram"].texts("-502"))
    assert "Groupe retiré" in await bot.say(ADMIN, "/degroupe", chat="-500")


async def test_an_approval_counts_its_recipients_once(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.enroll("matrix:@bob:test", "commercant", "Noidans-lès-Vesoul")
    await bot.say(OPERATOR, ALERT)
    store = bot.core.services.stores.deliveries
    counted: list[Reach] = []
    real = store.reach

    async def reach(*args: Any, **kwargs: Any) -> Reach:
        counted.append(await real(*args, **kwargs))
        return counted[-1]

    monkeypatch.setattr(store, "reach", reach)
    assert "diffusion à 2 destinataire" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    # Each count reads every matching subscriber: the officers' request, edited with the
    # decision, shows the reach the outbox counted.
    assert counted == [Reach(2, 0)]
    request = next(text for text in bot.officers() if "Demande de diffusion n°1" in text)
    assert "Portée : 2 abonnés, 0 groupe" in request and "Validée par" in request
