"""The outbox and the dispatcher: platform refusals, retries, restarts."""

from __future__ import annotations

import asyncio

import pytest

from bot.broadcast.dispatcher import Dispatcher
from bot.domain import Choice
from bot.i18n import Translator
from bot.metrics import Metrics
from bot.transports.base import ChatMoved, RateLimited, RecipientGone, TransientError
from tests.harness import OFFICERS, TestBot

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALERT = "/alerte cambriolage Vesoul pour commercant : Vitrine forcée"


async def approve_alert(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)


async def rows(bot: TestBot) -> dict[str, tuple[str, int, str | None]]:
    result = await bot.core.services.db.fetchall(
        "SELECT chat_id, status, attempts, last_error FROM deliveries ORDER BY id")
    return {row[0]: (row[1], row[2], row[3]) for row in result}


async def test_outbox_rows_exist_before_anything_is_sent(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.enroll("matrix:@bob:test", "commercant", "Vesoul")
    await approve_alert(bot)
    assert await rows(bot) == {"1": ("pending", 0, None), "@bob:test": ("pending", 0, None)}
    await bot.drain()
    assert {status for status, _, _ in (await rows(bot)).values()} == {"sent"}
    assert "Vitrine" in bot.inbox("matrix:@bob:test")[-1]


async def test_paused_and_other_communes_are_not_recipients(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.enroll("telegram:2", "commercant", "Vesoul")
    await bot.say("telegram:2", "/pause")
    await approve_alert(bot)
    assert list(await rows(bot)) == ["1"]


async def test_refusals_retries_and_report(bot: TestBot) -> None:
    for user in ("1", "2", "3", "4"):
        await bot.enroll(f"telegram:{user}", "commercant", "Vesoul")
    await bot.say("telegram:900", "/groupe Vesoul", chat="-70")
    telegram = bot.transports["telegram"]
    telegram.failures["1"] = [RateLimited(3, chat_only=True)]
    telegram.failures["2"] = [RecipientGone("Forbidden: bot was blocked by the user")]
    telegram.failures["3"] = [TransientError("502 Bad Gateway")] * 5
    telegram.failures["-70"] = [ChatMoved("-1007")]
    await approve_alert(bot)
    await bot.drain()
    assert (await rows(bot))["1"][0] == "pending"  # waits out its retry_after
    bot.advance(seconds=3)
    for _ in range(5):
        await bot.drain()
        bot.advance(seconds=60)
    result = await rows(bot)
    assert result["1"] == ("sent", 1, None)  # the 429 did not count as an attempt
    assert result["2"][0] == "blocked"
    assert result["3"] == ("failed", 5, "TransientError: 502 Bad Gateway")
    assert result["4"][0] == "sent"
    assert result["-1007"][0] == "sent"
    assert "Vitrine" in telegram.texts("-1007")[-1]
    group = await bot.core.services.stores.groups.get("telegram", "-1007")
    assert group is not None and group.status == "active"
    subscriber = await bot.core.services.stores.subscribers.get("telegram", "2")
    assert subscriber is not None and subscriber.status == "blocked"
    assert "3 envoyés, 1 échec, 1 bloqué sur 5" in bot.officers()[-1]


async def test_blocked_recipient_is_never_retried(bot: TestBot) -> None:
    await bot.enroll("telegram:2", "commercant", "Vesoul")
    bot.transports["telegram"].failures["2"] = [RecipientGone("blocked")]
    await approve_alert(bot)
    await bot.drain()
    sends = bot.transports["telegram"].send_count
    bot.advance(hours=1)
    await bot.drain()
    assert bot.transports["telegram"].send_count == sends
    assert (await rows(bot))["2"] == ("blocked", 1, "blocked")


async def test_restart_mid_broadcast_resumes_and_counts_possible_duplicates(
        bot: TestBot) -> None:
    for user in ("1", "2", "3"):
        await bot.enroll(f"telegram:{user}", "commercant", "Vesoul")
    await approve_alert(bot)
    deliveries = bot.core.services.stores.deliveries
    # A crash after claiming two rows: they are 'sending', nobody knows if they went out.
    claimed = await deliveries.claim_due("telegram", bot.clock.now(), 2)
    assert len(claimed) == 2
    await bot.restart()
    assert {status for status, _, _ in (await rows(bot)).values()} == {"pending"}
    await bot.drain()
    assert [len(bot.inbox(f"telegram:{u}")) for u in ("1", "2", "3")] == [1, 1, 1]
    report = bot.officers()[-1]
    assert "3 envoyés" in report and "Dont 2 envois repris" in report


async def test_alert_without_recipients_is_reported_at_once(bot: TestBot) -> None:
    await approve_alert(bot)
    await bot.drain()
    assert "0 envoyé, 0 échec, 0 bloqué sur 0" in bot.officers()[-1]


async def test_report_is_posted_once_even_after_restart(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await approve_alert(bot)
    await bot.drain()
    await bot.restart()
    await bot.drain()
    assert not any("Rapport" in text for text in bot.officers())  # posts cleared at restart
    assert await bot.core.services.db.fetchval(
        "SELECT count(*) FROM alerts WHERE reported_at IS NOT NULL") == 1


async def test_platform_without_transport_fails_its_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.harness import test_config

    bot = await TestBot(test_config(tmp_path / "db.sqlite3"), platforms=("telegram",)).start()
    try:
        await bot.core.services.db.execute(
            "INSERT INTO subscribers (platform, platform_user_id, chat_id, consent_at,"
            " consent_version, created_at, updated_at) VALUES"
            " ('matrix', '@x:test', '!room:test', 'now', 'v', 'now', 'now')")
        await bot.core.services.db.execute(
            "INSERT INTO subscriber_communes VALUES (1, '70550')")
        await bot.core.services.db.execute(
            "INSERT INTO subscriber_communities VALUES (1, 'commercant')")
        await approve_alert(bot)
        await bot.drain()
        assert (await rows(bot))["!room:test"][0] == "failed"
        assert "1 échec" in bot.officers()[-1]
    finally:
        await bot.stop()


async def test_background_dispatcher_delivers_without_help(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from tests.harness import test_config

    bot = await TestBot(test_config(tmp_path / "db.sqlite3"), background_dispatch=True).start()
    try:
        await bot.enroll("telegram:1", "commercant", "Vesoul")
        await approve_alert(bot)
        for _ in range(100):
            if any("Rapport" in text for text in bot.officers()):
                break
            await asyncio.sleep(0.02)
        assert "Vitrine" in bot.inbox("telegram:1")[-1]
        assert "1 envoyé," in bot.officers()[-1]
    finally:
        await bot.stop()


async def test_each_copy_has_its_alerts_receipt_buttons_built_once(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.broadcast import dispatcher

    built: list[int] = []
    real = dispatcher.receipt_choices

    def counted(t: Translator, alert_id: int) -> tuple[Choice, ...]:
        built.append(alert_id)
        return real(t, alert_id)

    monkeypatch.setattr(dispatcher, "receipt_choices", counted)
    for user in ("1", "2", "3"):
        await bot.enroll(f"telegram:{user}", "commercant", "Vesoul")
    await approve_alert(bot)
    await bot.drain()
    assert built == [1]  # per alert, not per copy
    for user in ("1", "2", "3"):
        copy = bot.transports["telegram"].posted[user][-1].message
        assert "Vitrine" in copy.text
        assert [choice.data for choice in copy.choices] == ["ack:1", "tip:1"]


async def test_stop_right_after_a_wake_stops(bot: TestBot) -> None:
    """An approval (wake) just as the bot stops: every dispatcher loop still ends (with
    asyncio.wait_for, Python 3.11 lost the cancellation and stop() waited for ever)."""
    hung = []
    for turns in range(6):  # the wake lands at different steps of the loops' waits
        dispatcher = Dispatcher(bot.core.services, bot.transports, bot.core.core.runner.perform,
                                Metrics())
        await dispatcher.start()
        await asyncio.sleep(0.1)  # idle: waiting for a wake
        dispatcher.wake()
        for _ in range(turns):
            await asyncio.sleep(0)
        try:
            await asyncio.wait_for(asyncio.shield(dispatcher.stop()), 5)
        except TimeoutError:
            hung.append(turns)
    assert hung == []
