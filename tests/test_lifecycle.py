"""The life of an alert: updates, all-clear, recall, expiry, timers, schedules, receipts."""

from __future__ import annotations

import pytest

from bot.broadcast.outbox import start_broadcast
from bot.transports.base import PermanentError
from tests.harness import OFFICERS, TestBot

OPERATOR, OFFICER, OFFICER2 = "telegram:100", "telegram:200", "telegram:201"
ALICE, BOB = "telegram:1", "telegram:2"
ALERT = "/alerte cambriolage Vesoul pour commercant : Vitrine forcée"


async def broadcast(bot: TestBot, command: str = ALERT) -> None:
    await bot.say(OPERATOR, command)
    number = await bot.core.services.db.fetchval("SELECT max(id) FROM alerts")
    await bot.say(OFFICER, f"/valider {number}", chat=OFFICERS)
    await bot.drain()


async def status(bot: TestBot, alert_id: int) -> tuple[str, str | None]:
    alert = await bot.core.services.stores.alerts.get(alert_id)
    assert alert is not None
    return alert.status, alert.closed


def posts(bot: TestBot, who: str) -> list:  # type: ignore[type-arg]
    return bot.transports["telegram"].posted[who.split(":")[1]]


async def test_update_is_approved_then_threaded_to_the_same_recipients(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    await bot.enroll(BOB, "commercant", "Vesoul")  # enrolled after: not a recipient
    received = len(bot.inbox(ALICE))
    preview = await bot.say(OPERATOR, "/suite 1 : Le fourgon a été retrouvé à Gray")
    assert "Alerte n°2 — aperçu" in preview and "Suite de l'alerte n°1" in preview
    assert len(bot.inbox(ALICE)) == received  # nothing sent before approval
    await bot.say(OFFICER, "/valider 2", chat=OFFICERS)
    await bot.drain()
    update = posts(bot, ALICE)[-1]
    assert "Mise à jour" in update.message.text and "fourgon" in update.message.text
    assert update.message.reply_to == posts(bot, ALICE)[-2].message_id
    assert not any("fourgon" in text for text in bot.inbox(BOB))
    assert "Rapport mise à jour n°2 (alerte n°1) : 1 envoyé," in bot.officers()[-1]


async def test_follow_ups_on_wrong_alerts_are_refused(bot: TestBot) -> None:
    assert "Aucune alerte n°9" in await bot.say(OPERATOR, "/suite 9 : x")
    assert "Usage" in await bot.say(OPERATOR, "/suite : x")
    await bot.say(OPERATOR, ALERT)
    assert "n'a pas été diffusée" in await bot.say(OPERATOR, "/suite 1 : x")
    assert "n'a pas été diffusée" in await bot.say(OPERATOR, "/fin 1")
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    assert "vide" in await bot.say(OPERATOR, "/suite 1 :  ")
    await bot.say(OPERATOR, "/fin 1")
    assert "déjà terminée" in await bot.say(OPERATOR, "/suite 1 : x")
    assert "déjà terminée" in await bot.say(OPERATOR, "/fin 1")
    assert "suite de l'alerte n°1" in await bot.say(OPERATOR, "/fin 2")


async def test_all_clear_marks_every_copy_lifted(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.say("telegram:900", "/groupe Vesoul", chat="-9")
    await broadcast(bot)
    reply = await bot.say(OFFICER, "/fin 1 : Individus interpellés", chat=OFFICERS)
    assert "levée" in reply and "attend la validation" in reply
    await bot.drain()
    original = posts(bot, ALICE)[-2]
    assert original.current.text.startswith("LEVÉE le 24/11")
    assert "L'alerte est levée" in posts(bot, ALICE)[-1].message.text
    assert bot.transports["telegram"].posted["-9"][1].current.text.startswith("LEVÉE")
    assert await status(bot, 1) == ("done", "ended")
    await bot.say(OFFICER2, "/valider 3", chat=OFFICERS)  # the officer's text, approved
    await bot.drain()
    closing = posts(bot, ALICE)[-1].message
    assert "Fin d'alerte" in closing.text and "Individus interpellés" in closing.text
    assert closing.reply_to == original.message_id


async def test_missing_person_copies_are_redacted_at_the_end(bot: TestBot) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    await bot.say(OPERATOR, "/alerte disparition Vesoul : Jeanne, 84 ans, manteau rouge")
    await bot.say(OFFICER, "/valider 1 parquet PR-2026-7", chat=OFFICERS)
    await bot.say(OFFICER2, "/valider 1", chat=OFFICERS)
    await bot.drain()
    await bot.say(OPERATOR, "/fin 1 : Jeanne a été retrouvée, merci")
    await bot.drain()
    copy = posts(bot, ALICE)[-2].current.text
    assert "Jeanne, 84 ans" not in copy and "informations sur la personne" in copy
    await bot.say(OFFICER, "/valider 3", chat=OFFICERS)  # the closing text, approved by two
    await bot.say(OFFICER2, "/valider 3", chat=OFFICERS)
    await bot.drain()
    assert "Jeanne a été retrouvée" in bot.inbox(ALICE)[-1]
    bot.advance(hours=73)  # when the alert would have expired, the closing text goes too
    await bot.core.core.tick()
    await bot.drain()
    assert not any("Jeanne" in text for text in bot.inbox(ALICE))
    assert "LEVÉE le 24/11 à 14:00" in bot.inbox(ALICE)[-1]


async def test_a_missing_person_copy_that_cannot_be_edited_is_deleted(bot: TestBot) -> None:
    await missing_person_with_an_update(bot)
    group = bot.transports["telegram"]
    edit = group.edit

    async def refuse_in_the_group(chat_id: str, message_id: str, message: object) -> None:
        if chat_id == "-9":
            raise PermanentError("message can't be edited")
        await edit(chat_id, message_id, message)  # type: ignore[arg-type]

    group.edit = refuse_in_the_group  # type: ignore[method-assign]
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    assert [p.deleted for p in group.posted["-9"] if "Jeanne" in p.message.text] == [True, True]
    assert len(shown(bot, "1", "informations sur la personne ont été retirées")) == 2


async def test_an_update_still_pending_at_the_end_never_goes_out(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    await bot.say(OPERATOR, "/suite 1 : Le fourgon est bleu")
    await bot.say(OPERATOR, "/fin 1")
    assert "n'est plus en attente" in await bot.say(OFFICER, "/valider 2", chat=OFFICERS)
    await bot.drain()
    assert not any("fourgon" in text for text in bot.inbox(ALICE))
    request = [p for p in bot.transports["telegram"].posted[OFFICERS]
               if p.message.text.startswith("Demande de diffusion n°2")]
    assert "Retirée : l'alerte n°1 est terminée" in request[0].current.text


async def test_withdraw_pending_by_its_requester_only(bot: TestBot) -> None:
    bot.platform_names[OPERATOR] = "Adjudant Durand"
    await bot.say(OPERATOR, ALERT)
    assert "Seul l'auteur" in await bot.say(OFFICER, "/retirer 1", chat=OFFICERS)
    assert "retirée" in await bot.say(OPERATOR, "/retirer 1")
    assert await status(bot, 1) == ("withdrawn", None)
    assert "Retirée par Adjudant Durand" in \
        bot.transports["telegram"].posted[OFFICERS][0].current.text
    assert "n'est plus en attente" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)


async def test_recall_deletes_copies_and_reports_failures(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.enroll(BOB, "commercant", "Vesoul")
    await broadcast(bot)
    bot.transports["telegram"].failures["2"] = [PermanentError("message can't be deleted")]
    assert "Retrait de l'alerte n°1 en cours" in await bot.say(OFFICER, "/retirer 1",
                                                              chat=OFFICERS)
    await bot.drain()
    assert not any("Vitrine" in text for text in bot.inbox(ALICE))
    assert any("Vitrine" in text for text in bot.inbox(BOB))
    assert "1 copie supprimée, 1 impossible à supprimer, 0 destinataire parti" in bot.officers()[-1]
    assert await status(bot, 1) == ("done", "recalled")


async def test_expiry_marks_copies_and_drops_pending_sends(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.enroll(BOB, "commercant", "Vesoul")
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    deliveries = bot.core.services.stores.deliveries
    claimed = await deliveries.claim_due("telegram", bot.clock.now(), 1)  # ALICE only
    await bot.core.core.dispatcher.send_rows("telegram", claimed)
    bot.advance(hours=25)  # cambriolage expires after 24 h
    await bot.core.core.tick()
    await bot.drain()
    assert posts(bot, ALICE)[-1].current.text.startswith("EXPIRÉE")
    assert not any("Vitrine" in text for text in bot.inbox(BOB))
    assert (await deliveries.counts(1)).dropped == 1
    assert await status(bot, 1) == ("done", "expired")
    await bot.core.core.tick()
    assert await bot.core.services.db.fetchval(
        "SELECT count(*) FROM alerts WHERE kind = 'expiry'") == 1


async def test_reminder_and_unapproved_expiry_survive_a_restart(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    bot.advance(minutes=11)
    await bot.restart()
    await bot.core.core.tick()
    await bot.core.core.tick()
    reminders = [t for t in bot.officers() if "Rappel" in t]
    assert len(reminders) == 1 and "depuis 11 min" in reminders[0]
    bot.advance(minutes=110)
    await bot.restart()
    await bot.core.core.tick()
    assert await status(bot, 1) == ("expired", None)
    assert "expiré sans validation" in bot.inbox(OPERATOR)[-1]
    assert "n'est plus en attente" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)


async def test_scheduled_message_waits_for_its_time(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    reply = await bot.say(OPERATOR, "/programmer 25/11 09:00 Vesoul pour commercant : "
                                    "Fermez vos rideaux métalliques")
    assert "Programme n°1 (une fois)" in reply and "25/11 à 09:00" in reply
    assert "programmé le 25/11 à 09:00" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    assert not any("rideaux" in t for t in bot.inbox(ALICE))
    bot.advance(hours=18, minutes=59)  # 08:59 in Paris
    await bot.core.core.tick()
    await bot.drain()
    assert not any("rideaux" in t for t in bot.inbox(ALICE))
    bot.advance(minutes=1)
    await bot.restart()
    await bot.core.core.tick()
    await bot.drain()
    assert any("rideaux" in t for t in bot.inbox(ALICE))
    assert posts(bot, ALICE)[-1].message.tone.value == "quiet"


async def test_weekly_schedule_repeats_until_cancelled(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    reply = await bot.say(OPERATOR, "/programmer chaque vendredi 17:00 Vesoul : Bon week-end,"
                                    " verrouillez vos portes")
    assert "27/11 à 17:00" in reply and "chaque semaine" in reply
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    bot.advance(days=3, hours=3)  # Friday 17:00
    await bot.core.core.tick()
    await bot.drain()
    assert sum("verrouillez" in t for t in bot.inbox(ALICE)) == 1
    listing = await bot.say(OPERATOR, "/programmes")
    assert "prochain : 04/12 à 17:00" in listing
    assert "(1 envoi en attente retiré)" in await bot.say(OPERATOR, "/deprogrammer 1")
    bot.advance(days=7)
    await bot.core.core.tick()
    await bot.drain()
    assert sum("verrouillez" in t for t in bot.inbox(ALICE)) == 1
    assert "Aucun message programmé" in await bot.say(OPERATOR, "/programmes")


async def test_schedule_bad_input(bot: TestBot) -> None:
    assert "passée" in await bot.say(OPERATOR, "/programmer 01/01/2020 10:00 Vesoul : x")
    assert "Jour inconnu" in await bot.say(OPERATOR, "/programmer chaque jourdi 10:00 Vesoul : x")
    assert "Date impossible" in await bot.say(OPERATOR, "/programmer 31/02 10:00 Vesoul : x")
    assert "Usage" in await bot.say(OPERATOR, "/programmer demain Vesoul : x")
    assert "Aucun programme actif" in await bot.say(OPERATOR, "/deprogrammer 4")


async def test_receipts_and_tips(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    assert "réception de l'alerte n°1 notée" in await bot.press(ALICE, "Reçu")
    assert "déjà notée" in await bot.press(ALICE, "Reçu")
    assert "n'est plus valable" in await bot.press_data(BOB, "ack:1")
    assert "Quelle information" in await bot.press(ALICE, "information")
    assert "transmise" in await bot.say(ALICE, "Fourgon blanc vu rue Carnot à 15 h")
    forwarded = bot.officers()[-1]
    assert "Information n°1 sur l'alerte n°1, de l'abonné n°1" in forwarded
    assert "Fourgon blanc" in forwarded
    assert "envoyée" in await bot.say(OFFICER, "/repondre 1 Merci, une patrouille passe",
                                      chat=OFFICERS)
    assert "une patrouille passe" in bot.inbox(ALICE)[-1]
    assert "1 accusé de réception" in await bot.say(OPERATOR, "/journal 1")


async def test_a_receipt_pressed_before_its_copy_is_recorded_as_sent_counts(
        bot: TestBot) -> None:
    # The copy is on the phone while the dispatcher still holds its row 'sending' (outcomes
    # are recorded a batch at a time): a quick press is a receipt, not a stale button.
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.say(OPERATOR, "/alerte cambriolage Vesoul : Vitrine forcée")
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    rows = await bot.core.core.dispatcher._claim("telegram", 10)
    assert [row.status for row in rows] == ["sending"]
    assert "réception de l'alerte n°1 notée" in await bot.press_data(ALICE, "ack:1")


async def test_receipts_from_a_group_the_alert_reached(bot: TestBot) -> None:
    await bot.say("telegram:900", "/groupe Vesoul", chat="-5")
    await broadcast(bot)
    assert "notée" in await bot.press_data("telegram:3", "ack:1", chat="-5")
    assert "déjà notée" in await bot.press_data("telegram:4", "ack:1", chat="-5")
    # From a chat the alert never reached: refused, and not said before the whole group.
    assert await bot.press_data("telegram:3", "ack:1", chat="-6") == ""


async def test_exercise_is_marked_everywhere(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    preview = await bot.say(OPERATOR, "/alerte vol Vesoul exercice : Test du dispositif")
    assert "EXERCICE" in preview
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    delivered = bot.inbox(ALICE)[-1]
    assert delivered.startswith("[EXERCICE]") and "ne pas tenir compte" in delivered


async def test_journal_lists_the_whole_history(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    bot.platform_names.update({OPERATOR: "Adjudant Durand", OFFICER: "Capitaine Martin"})
    await broadcast(bot)
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    journal = await bot.say(OFFICER, "/journal 1", chat=OFFICERS)
    for expected in ("en attente de validation · Adjudant Durand",
                     "validée · Capitaine Martin", "diffusée · le bot",
                     "validation par Capitaine Martin", "n°2 : fin d'alerte", "1 envoyé, 0 échec"):
        assert expected in journal, expected
    assert "telegram:" not in journal and "system" not in journal  # ids: the audit trail


async def test_stats_keep_exercises_apart(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.enroll(BOB, "agriculteur", "Gray")
    await bot.say(BOB, "/pause")
    await broadcast(bot)
    await broadcast(bot, "/alerte vol Vesoul exercice : test")
    await bot.press_data(ALICE, "ack:1")  # the real alert, not the exercise
    stats = await bot.say(OFFICER, "/stats 7", chat=OFFICERS)
    assert "1 actif, 1 en pause, 0 bloqué" in stats
    assert "Commerçants 1" in stats and "Vesoul 1" in stats
    assert "cambriolage 1 (exercices à part : 1)" in stats
    assert "Messages : 1 envoyé, 0 échec" in stats and "(100 %)" in stats
    assert "Usage" in await bot.say(OFFICER, "/stats hier", chat=OFFICERS)
    assert "réservée" in await bot.say(ALICE, "/stats")


async def test_audit_chain_detects_tampering(bot: TestBot) -> None:
    await broadcast(bot)
    audit = bot.core.services.stores.audit
    check = await audit.verify()
    assert check.broken_at is None and check.checked >= 2
    await bot.core.services.db.execute(
        "UPDATE audit_events SET actor = 'telegram:666' WHERE id = 1")
    check = await audit.verify()
    assert (check.checked, check.broken_at) == (0, 1)


async def test_audit_verify_and_csv_export_commands(bot: TestBot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io

    from bot.maintenance import export_csv, verify_audit

    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    out = io.StringIO()
    assert await verify_audit(bot.config, out) == 0
    assert "audit chain intact" in out.getvalue()
    await export_csv(bot.config, tmp_path / "alerts.csv")
    lines = (tmp_path / "alerts.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("id,kind,parent_id,category,exercise,status")
    assert lines[1].startswith("1,alert,,cambriolage,0,done")
    assert lines[1].endswith(",1,0,0,0,0,defaut")  # the implicit organisation, last
    assert "last hash" in out.getvalue()
    await bot.core.services.db.execute("DELETE FROM audit_events WHERE id = 1")
    out = io.StringIO()
    assert await verify_audit(bot.config, out) == 1
    assert "BROKEN at event 2" in out.getvalue()


# -- security review (issue 12) ------------------------------------------------------

SCAM = "Rappelez le 06 12 34 56 78 et communiquez votre code bancaire"
OTHER_OPERATOR = "matrix:@op:test"  # an operator, not an officer, not the author


def anywhere(bot: TestBot, words: str) -> list[str]:
    """Every copy shown now, in every chat of every platform, that contains ``words``."""
    return [post.current.text for transport in bot.transports.values()
            for chat in transport.posted.values() for post in chat
            if not post.deleted and words in post.current.text]


async def test_a_failed_end_changes_nothing_and_can_be_retried(bot: TestBot,
                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    alerts = bot.core.services.stores.alerts
    create = alerts.create

    async def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(alerts, "create", disk_full)  # the write after « closed »
    assert "erreur interne" in await bot.say(OPERATOR, "/fin 1")
    assert await status(bot, 1) == ("done", None)
    monkeypatch.setattr(alerts, "create", create)
    assert "levée" in await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    assert sum("Fin d'alerte" in text for text in bot.inbox(ALICE)) == 1
    assert posts(bot, ALICE)[-2].current.text.startswith("LEVÉE")


async def test_a_decision_after_the_deadline_finds_the_alert_expired(bot: TestBot) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")
    await bot.say(OPERATOR, "/alerte crue Gray : Le Salon déborde")
    bot.advance(hours=8)  # the deadline (120 min) passed 6 h ago; no clock tick since
    reply = await bot.press_data(OFFICER, "ap:1:ok", chat=OFFICERS)  # ✅ under n°1
    await bot.drain()
    assert not any("Saône" in text for text in bot.inbox(ALICE))
    assert "a expiré sans validation" in reply
    assert await status(bot, 1) == ("expired", None)
    assert "expiré sans validation" in bot.inbox(OPERATOR)[-1]
    assert "a expiré sans validation" in await bot.say(OFFICER, "/refuser 2 x", chat=OFFICERS)
    assert await status(bot, 2) == ("expired", None)
    await bot.core.core.tick()  # the clock finds nothing left to expire
    assert await bot.core.services.db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'alert.expired_unapproved'") == 2


async def test_an_end_text_reaches_nobody_before_an_officer_approves_it(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    refused = await bot.say(OTHER_OPERATOR, f"/fin 1 : {SCAM}")  # not their alert
    await bot.drain()
    assert not any("code bancaire" in text for text in bot.inbox(ALICE))
    assert "Seul l'auteur de l'alerte n°1 ou un officier" in refused
    assert await status(bot, 1) == ("done", None)
    reply = await bot.say(OPERATOR, f"/fin 1 : {SCAM}")  # the author: ended at once
    await bot.drain()
    assert not any("code bancaire" in text for text in bot.inbox(ALICE))
    assert "levée" in reply and "n°3" in reply and "validation" in reply
    assert await status(bot, 1) == ("done", "ended")
    assert posts(bot, ALICE)[-2].current.text.startswith("LEVÉE")
    assert "L'alerte est levée. Merci de votre vigilance." in bot.inbox(ALICE)[-1]
    assert "refusée" in await bot.say(OFFICER, "/refuser 3 faux numéro", chat=OFFICERS)
    await bot.drain()
    assert not any("code bancaire" in text for text in bot.inbox(ALICE))


async def test_updates_reach_nobody_unless_approved(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    await bot.say(OPERATOR, f"/suite 1 : {SCAM}")
    await bot.say(OFFICER, "/refuser 2 faux", chat=OFFICERS)
    await bot.say(OPERATOR, f"/suite 1 : {SCAM}")
    bot.advance(hours=3)
    await bot.core.core.tick()
    assert "n'est plus en attente" in await bot.say(OFFICER, "/valider 3", chat=OFFICERS)
    await bot.drain()
    assert not any("code bancaire" in text for text in bot.inbox(ALICE))


async def test_the_outbox_refuses_operator_text_nobody_approved(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await broadcast(bot)
    await bot.say(OPERATOR, f"/suite 1 : {SCAM}")
    services, now = bot.core.services, bot.clock.now()
    # A path that forgets the officers: « approved » without any approval recorded.
    await services.stores.alerts.transition(2, "pending", "approved", OPERATOR, now)
    with pytest.raises(Exception, match="approval its category requires"):
        async with services.db.transaction():
            await start_broadcast(services, 2, now)
    await bot.drain()
    assert not any("code bancaire" in text for text in bot.inbox(ALICE))
    assert await services.db.fetchval("SELECT count(*) FROM deliveries WHERE alert_id = 2") == 0


async def test_a_schedule_sends_only_the_text_the_officers_approved(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.say(OPERATOR, "/programmer 25/11 09:00 Vesoul : Fermez vos rideaux")  # never approved
    await bot.say(OPERATOR, "/programmer chaque vendredi 17:00 Vesoul : Verrouillez vos portes")
    await bot.say(OFFICER, "/valider 2", chat=OFFICERS)
    bot.advance(days=3, hours=3)  # Friday 17:00: the approved text goes, the next is prepared
    await bot.core.core.tick()
    await bot.drain()
    assert sum("Verrouillez" in text for text in bot.inbox(ALICE)) == 1
    db = bot.core.services.db
    await db.execute("UPDATE alerts SET body = ? WHERE id = 3", (SCAM,))  # tampered
    bot.advance(days=7)
    await bot.core.core.tick()
    await bot.drain()
    assert not any("rideaux" in text or "code bancaire" in text for text in bot.inbox(ALICE))
    assert await status(bot, 3) == ("withdrawn", None)
    assert any("n°3 n'a pas été envoyé" in text for text in bot.officers())
    assert await db.fetchval("SELECT count(*) FROM audit_events"
                             " WHERE action = 'outbox.refused_unapproved' AND alert_id = 3") == 1


def shown(bot: TestBot, chat: str, words: str) -> list[str]:
    return [text for text in bot.transports["telegram"].texts(chat) if words in text]


async def missing_person_with_an_update(bot: TestBot) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    await bot.say("telegram:900", "/groupe Vesoul", chat="-9")
    await bot.say(OPERATOR, "/alerte disparition Vesoul : Jeanne, 84 ans, manteau rouge")
    await bot.say(OFFICER, "/valider 1 parquet PR-2026-7", chat=OFFICERS)
    await bot.say(OFFICER2, "/valider 1", chat=OFFICERS)
    await bot.drain()
    await bot.say(OPERATOR, "/suite 1 : Jeanne a été vue près de la gare, canne blanche")
    await bot.say(OFFICER, "/valider 2", chat=OFFICERS)
    await bot.say(OFFICER2, "/valider 2", chat=OFFICERS)
    await bot.drain()
    for chat in ("1", "-9"):
        assert len(shown(bot, chat, "Jeanne")) == 2  # the original and the update


@pytest.mark.parametrize("end", ["/fin 1", "/retirer 1", "expiry"])
async def test_every_copy_of_a_missing_person_is_cleaned_at_the_end(bot: TestBot,
                                                                    end: str) -> None:
    await missing_person_with_an_update(bot)
    if end == "expiry":
        bot.advance(hours=73)
        await bot.core.core.tick()
    else:
        await bot.say(OPERATOR, end)
    await bot.drain()
    for chat in ("1", "-9"):
        assert shown(bot, chat, "Jeanne") == [], (end, chat)
    if end != "/retirer 1":
        assert len(shown(bot, "1", "informations sur la personne ont été retirées")) == 2
    assert shown(bot, OFFICERS, "Jeanne") == []  # the approval requests
    maps = [p for p in bot.transports["telegram"].posted[OFFICERS] if p.message.attachment]
    assert maps and all(p.deleted for p in maps)
