"""Sends outbox rows through the transports, at each platform's pace, and reports.

Per platform, one pump keeps two batches' worth of rows in hand: it claims a batch of
``in_flight`` due rows (marking them 'sending' and counting the attempt) as soon as that
many places are free, sends each row under the platform's pacer, and records the
outcomes a batch at a time (``in_flight`` outcomes, or whatever landed once nothing is in
flight) in one transaction. A slow send holds its own place only: the pipe stays full
while it finishes, instead of a whole batch waiting for its slowest message.

Guarantee: a row is marked 'sent' only after the platform accepted it. At most two
batches' worth of rows are claimed and not yet recorded; a crash leaves them as 'sending',
and at start they go back to 'pending', flagged as possible duplicates and counted in the
report. So no recipient is lost, and at most 2 × ``in_flight`` messages can arrive twice.

``in_flight`` is ``broadcast.in_flight``, or by default a tenth of a second of the
platform's rate (``BroadcastConfig.in_flight_for``): two batches in hand then cover calls
of up to 0.2 s at the ceiling.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.alert_copy import closed_copy, delivered_alert, recall_notice, receipt_choices
from bot.broadcast.outbox import resolve_more
from bot.broadcast.pacing import Pacer, Priority, pacers_for, platform_limits
from bot.config import PlatformRateLimits
from bot.context import Services, staff_translator
from bot.domain import ChatRef, EditTracked, Effects, Notify, Outgoing, ToOfficers
from bot.enums import AlertStatus, DeliveryAction, SendOutcome
from bot.i18n import Translator
from bot.metrics import Metrics
from bot.render import MAIN_ACTION, progress, report, sent_on
from bot.storage.alerts import Alert
from bot.storage.deliveries import Delivery
from bot.storage.whatsapp import WhatsAppStore
from bot.transports.base import (
    ChatMoved,
    PermanentError,
    RateLimited,
    RecipientGone,
    Transport,
    file_parts,
    join_ids,
    text_parts,
)

log = logging.getLogger(__name__)

EffectsSink = Callable[[Effects], Awaitable[None]]
BATCHES_IN_HAND = 2  # rows claimed and not yet recorded: at most this × in_flight
PROGRESS_EVERY = 5.0  # seconds between edits of a broadcast's progress message
PROGRESS_FROM = 100  # recipients: smaller broadcasts end before a progress message helps
PROGRESS = "progress"
# While full batches keep coming, finished broadcasts are looked for at most this often
# (seconds) instead of after every batch: two queries per batch on the sending path cost
# 5 % of the throughput at 1,000 msg/s. A batch that is not full looks at once.
FINISH_EVERY = 0.5
# After a wake-up the resolver lets the workers claim and prepare their first batch before
# it takes the database for a chunk of recipients (a long transaction), so the first
# messages of an approved alert leave at once; it waits at most this long (seconds).
SENDERS_FIRST = 1.0


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` seconds have passed. Not asyncio.wait_for: on
    Python 3.11 an event set just before the task is cancelled makes it swallow the
    cancellation, and stop() waits for ever (tests/test_broadcast.py)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


@dataclass(frozen=True, slots=True)
class Outcome:
    row: Delivery
    status: SendOutcome
    message_id: str | None = None
    error: str = ""
    retry_in: float = 0.0
    count_attempt: bool = True
    new_chat_id: str | None = None


class Dispatcher:
    def __init__(self, services: Services, transports: Mapping[str, Transport],
                 perform: EffectsSink, metrics: Metrics | None = None,
                 pacers: Mapping[str, Pacer] | None = None) -> None:
        self.services = services
        self.transports = transports
        self.perform = perform
        self.metrics = metrics or Metrics()
        # Alerts with a copy sent since this process started: their first copy is behind
        # them, so recording a batch asks the database only about the others.
        self._copies_out: set[int] = set()
        self._wake = {platform: asyncio.Event() for platform in transports}
        self._resolve_wake = asyncio.Event()
        # Shared with the reply sender (bot/effect_runner.py): replies take slots first.
        self.pacers = dict(pacers) if pacers is not None else pacers_for(
            services.config.rate_limits, transports, services.clock)
        # Each copy is written in its recipient's language: (alert, action, language).
        self._rendered: dict[tuple[int, str, str], Outgoing] = {}
        # Per alert and language: its rendered send, and that with a subscriber's buttons.
        self._receipted: dict[tuple[int, str], tuple[Outgoing, Outgoing]] = {}
        self._protected: dict[int, bool] = {}  # alert id → its category is protected
        self._kinds: dict[int, str] = {}  # alert id → its kind, known from rendering
        self._tasks: list[asyncio.Task[None]] = []
        self._finish_checked = float("-inf")  # event-loop time of the last finish_completed
        self._senders_went = asyncio.Event()  # a worker claimed since the last wake()
        self._staff = staff_translator(services)  # progress and reports

    def limits(self, platform: str) -> PlatformRateLimits:
        return platform_limits(self.services.config.rate_limits, platform)

    def in_flight(self, platform: str) -> int:
        return self.services.config.broadcast.in_flight_for(self.limits(platform))

    # -- running ---------------------------------------------------------------------

    async def start(self) -> None:
        recovered = await self.services.stores.deliveries.recover_interrupted()
        if recovered:
            log.warning("resuming deliveries interrupted by a stop count=%d", recovered)
        for platform in self.transports:
            self._spawn(self._pump(platform), f"send-{platform}")
        self._spawn(self._resolver(), "resolve")
        self._spawn(self._progress_loop(), "progress")
        self.wake()

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))  # type: ignore[arg-type]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        self._senders_went.clear()  # the workers go first (SENDERS_FIRST)
        for event in self._wake.values():
            event.set()
        self._resolve_wake.set()

    async def _pump(self, platform: str) -> None:
        """The platform's sending loop in the background (see the module docstring)."""
        batch_size = self.in_flight(platform)
        in_hand = BATCHES_IN_HAND * batch_size
        news = self._wake[platform]  # set by wake() and by new recipients: claim again
        sending: set[asyncio.Task[Outcome]] = set()
        landed: list[Outcome] = []  # sent (or refused), not yet recorded
        a_send_landed = asyncio.Event()

        def land(task: asyncio.Task[Outcome]) -> None:
            sending.discard(task)
            if not task.cancelled():
                landed.append(task.result())  # _deliver turns every error into an Outcome
            a_send_landed.set()

        dry = False  # the last claim came back short: claim again only on news
        try:
            while True:
                try:
                    dry = dry and not news.is_set()
                    if landed and (len(landed) >= batch_size or not sending):
                        await self._record_landed(landed, batch_size)
                        if not sending or self._loop_time() - self._finish_checked >= \
                                FINISH_EVERY:
                            await self.finish_completed()
                    elif not dry and len(sending) + len(landed) + batch_size <= in_hand:
                        news.clear()
                        batch = await self._claim(platform, batch_size)
                        for row in batch:
                            task = asyncio.create_task(self._deliver(platform, row))
                            sending.add(task)
                            task.add_done_callback(land)
                        dry = len(batch) < batch_size
                    elif sending:
                        a_send_landed.clear()
                        await a_send_landed.wait()
                    else:  # nothing in hand, nothing due
                        await self.finish_completed()
                        await self._idle(platform)
                        dry = False
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatcher failed platform=%s; retrying in 1 s", platform)
                    await asyncio.sleep(1)
        finally:
            await self._let_go(sending, landed)

    async def _record_landed(self, landed: list[Outcome], batch_size: int) -> None:
        outcomes = landed[:batch_size]
        await self._record(outcomes)
        del landed[:len(outcomes)]  # only once recorded: a failed write is tried again

    async def _let_go(self, sending: set[asyncio.Task[Outcome]],
                      landed: list[Outcome]) -> None:
        """On stop: sends in progress are abandoned (their rows stay 'sending', to be
        resent as possible duplicates), those already answered are recorded."""
        for task in list(sending):
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        if landed:
            try:
                await self._record(landed)
            except Exception:
                log.exception("could not record %d outcomes while stopping", len(landed))

    async def _claim(self, platform: str, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` due rows and render their messages."""
        try:
            batch = await self.services.stores.deliveries.claim_due(
                platform, self.services.clock.now(), limit)
            await self._prepare(batch)
        finally:
            self._senders_went.set()
        return batch

    async def run_once(self, platform: str) -> bool:
        """Send one batch of due rows and record it; returns False when nothing was due.
        (The step-by-step form of the pump, for tests and tools.)"""
        limit = self.in_flight(platform)
        batch = await self._claim(platform, limit)
        if batch:
            await self.send_rows(platform, batch)
        # A full batch means more rows are due: the last batch of a broadcast comes back
        # short (or empty), and another broadcast finishing meanwhile waits FINISH_EVERY.
        if len(batch) < limit or self._loop_time() - self._finish_checked >= FINISH_EVERY:
            await self.finish_completed()
        return bool(batch)

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    async def send_rows(self, platform: str, rows: list[Delivery]) -> None:
        """Send claimed rows concurrently (paced), then record all outcomes at once."""
        outcomes = await asyncio.gather(*(self._deliver(platform, row) for row in rows))
        await self._record(outcomes)

    async def _prepare(self, rows: list[Delivery]) -> None:
        """Render the batch's messages now, while it holds no pacer slot: the first batch
        of a broadcast does not then wait for the database behind a resolver chunk."""
        for key in {self._key(row) for row in rows
                    if row.action != DeliveryAction.DELETE} - self._rendered.keys():
            with contextlib.suppress(Exception):  # met again, and reported, row by row
                self._rendered[key] = await self._render(*key)

    async def _idle(self, platform: str) -> None:
        """Until news (the event is cleared before each claim, so nothing is missed) or
        the next retry is due."""
        event = self._wake[platform]
        timeout = await self._seconds_until_due(platform)
        await _wait(event, timeout)
        self.pacers[platform].forget_idle_chats()

    async def _seconds_until_due(self, platform: str) -> float:
        due = await self.services.stores.deliveries.next_due(platform)
        if due is None:
            return 30.0
        delta = due - self.services.clock.now()
        return min(max(delta.total_seconds(), 0.05), 30.0)

    # -- one row ---------------------------------------------------------------------

    async def _deliver(self, platform: str, row: Delivery) -> Outcome:
        pacer = self.pacers[platform]
        try:
            await pacer.acquire(row.chat_id, row.recipient_kind == "group", Priority.BULK)
            message_id = await self._perform(platform, row)
        except RateLimited as error:
            (pacer.delay_chat(row.chat_id, error.retry_after) if error.chat_only
             else pacer.pause(error.retry_after))
            return Outcome(row, SendOutcome.RETRY, error=str(error), retry_in=error.retry_after,
                           count_attempt=False)
        except ChatMoved as error:
            return Outcome(row, SendOutcome.MOVED, error=str(error), new_chat_id=error.new_chat_id)
        except RecipientGone as error:
            return Outcome(row, SendOutcome.BLOCKED, error=str(error) or "recipient gone")
        except PermanentError as error:
            return Outcome(row, SendOutcome.FAILED, error=str(error))
        except Exception as error:  # transient or unexpected: retry with backoff
            return self._backoff(row, f"{type(error).__name__}: {error}")
        return Outcome(row, SendOutcome.SENT, message_id=message_id)

    def _backoff(self, row: Delivery, error: str) -> Outcome:
        settings = self.services.config.broadcast
        if row.attempts >= settings.max_attempts:
            return Outcome(row, SendOutcome.FAILED, error=error)
        delay = min(settings.retry_base_seconds * 2 ** (row.attempts - 1),
                    settings.retry_max_seconds)
        return Outcome(row, SendOutcome.RETRY, error=error, retry_in=delay)

    async def _perform(self, platform: str, row: Delivery) -> str:
        """One outbox row on the platform; returns the id of the message sent or acted on."""
        transport = self.transports[platform]
        target = row.target_message_id or ""
        if row.action == DeliveryAction.DELETE:
            if not transport.capabilities.delete:
                return await self._follow_up(transport, row, await self._message(row))
            await transport.delete(row.chat_id, target)
            return target
        message = await self._message(row)
        if row.action == DeliveryAction.EDIT:
            if not transport.capabilities.edit:
                return await self._follow_up(transport, row, message)
            await self._edit_or_delete(transport, row, message)
            return target
        return await transport.send(row.chat_id, message)

    async def _follow_up(self, transport: Transport, row: Delivery, message: Outgoing) -> str:
        """Where the platform cannot edit or delete (WhatsApp), what the copy would have
        become goes as a new message quoting it; the report says so. An all-clear needs
        none: its closing words already went, quoting the copy."""
        target = row.target_message_id or ""
        if self._kinds.get(row.alert_id) == "all_clear":
            return target
        return await transport.send(row.chat_id, replace(message, reply_to=target, choices=()))

    async def _edit_or_delete(self, transport: Transport, row: Delivery,
                              message: Outgoing) -> None:
        """A protected alert's photo is deleted (an image cannot become text) and its text
        edited; a copy that the platform will not edit is deleted instead: the person's
        face and description must not stay on anyone's phone."""
        target = row.target_message_id or ""
        protected = await self._is_protected(row.alert_id)
        if protected and (files := file_parts(target)):
            await transport.delete(row.chat_id, join_ids(files))
            target = join_ids(text_parts(target))
            if not target:  # the photo carried the text as its caption: both are gone
                return
        try:
            await transport.edit(row.chat_id, target, message)
        except PermanentError:
            if not protected:
                raise
            await transport.delete(row.chat_id, target)

    async def _is_protected(self, alert_id: int) -> bool:
        """Known from rendering the row's message; read again after a restart."""
        protected = self._protected.get(alert_id)
        if protected is None:
            alert = await self.services.stores.alerts.get(alert_id)
            category = None if alert is None else self.services.reference.categories.get(
                alert.category)
            protected = self._protected[alert_id] = category is not None and category.protected
        return protected

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Every outcome of a batch in one transaction: one write per batch, not per row."""
        stores, now = self.services.stores, self.services.clock.now()
        sent = [o for o in outcomes if o.status == SendOutcome.SENT]
        async with self.services.db.transaction():
            started = await self._first_copies(sent)
            await stores.deliveries.mark_sent_many(
                [(o.row.id, o.message_id or "") for o in sent], now)
            for outcome in outcomes:
                if outcome.status != SendOutcome.SENT:
                    await self._record_problem(outcome, now)
        self._count(outcomes, started, now)

    async def _first_copies(self, sent: list[Outcome]) -> dict[int, datetime]:
        """The alerts whose first copy is in this batch, and when their broadcast started
        (read before the batch is marked sent)."""
        first = {o.row.alert_id for o in sent if o.row.action == DeliveryAction.SEND}
        alert_ids = first - self._copies_out
        started: dict[int, datetime] = {}
        for alert_id in alert_ids:
            moment = await self.services.stores.deliveries.started_without_copy(alert_id)
            if moment is not None:
                started[alert_id] = moment
        return started

    def _count(self, outcomes: list[Outcome], started: dict[int, datetime],
               now: datetime) -> None:
        """The batch's figures, once recorded: a write that failed is tried again, and must
        not count twice."""
        for (platform, status), count in collections.Counter(
                (o.row.platform, o.status) for o in outcomes).items():
            self.metrics.delivered(platform, status, count)
        for moment in started.values():
            self.metrics.first_copy((now - moment).total_seconds())
        self._copies_out.update(o.row.alert_id for o in outcomes if o.status == SendOutcome.SENT
                                and o.row.action == DeliveryAction.SEND)

    async def _record_problem(self, outcome: Outcome, now: datetime) -> None:
        stores, row = self.services.stores, outcome.row
        if outcome.status == SendOutcome.RETRY:
            await stores.deliveries.retry_later(row.id, now + timedelta(seconds=outcome.retry_in),
                                                outcome.error, outcome.count_attempt)
        elif outcome.status == SendOutcome.MOVED:
            assert outcome.new_chat_id is not None
            if row.recipient_kind == "group":
                await stores.groups.move(row.platform, row.chat_id, outcome.new_chat_id)
            await stores.deliveries.move_chat(row.id, outcome.new_chat_id)
            await stores.deliveries.retry_later(row.id, now, outcome.error, count_attempt=False)
        else:
            await stores.deliveries.mark_final(row.id, outcome.status, outcome.error)
            if outcome.status == SendOutcome.BLOCKED:
                await self._mark_recipient_blocked(row, now)

    async def _mark_recipient_blocked(self, row: Delivery, now: datetime) -> None:
        stores = self.services.stores
        if row.recipient_kind == "group":
            await stores.groups.set_status_by_chat(row.platform, row.chat_id, "blocked")
        else:
            await stores.subscribers.set_status(row.recipient_id, "blocked", now)

    # -- what is sent --------------------------------------------------------------------

    def _key(self, row: Delivery) -> tuple[int, str, str]:
        return row.alert_id, row.action, row.language or self.services.config.language

    async def _message(self, row: Delivery) -> Outgoing:
        key = self._key(row)
        if key not in self._rendered:
            self._rendered[key] = await self._render(*key)
        message = self._rendered[key]
        if row.action != DeliveryAction.SEND:
            return message
        if row.recipient_kind == "subscriber" and row.reply_to_message_id is None:
            return self._with_receipt(row.alert_id, key[2], message)
        return replace(message, reply_to=row.reply_to_message_id)

    def _with_receipt(self, alert_id: int, language: str, message: Outgoing) -> Outgoing:
        """A subscriber's copy, with its receipt buttons: one per alert and language, not
        per message (encoding and checking the buttons' data was a tenth of the
        per-message CPU)."""
        rendered, copy = self._receipted.get((alert_id, language), (None, None))
        if rendered is not message or copy is None:
            t = Translator(self.services.catalog, language)
            copy = replace(message, choices=receipt_choices(t, alert_id))
            self._receipted[(alert_id, language)] = (message, copy)
        return copy

    async def _render(self, alert_id: int, action: str, language: str) -> Outgoing:
        stores = self.services.stores
        alert = await stores.alerts.get(alert_id)
        assert alert is not None
        category = self.services.reference.categories[alert.category]
        t = Translator(self.services.catalog, language)
        # The issuing organisation's signature (bot/organisations.py), on every copy,
        # update and all-clear.
        signature = self.services.organisations.signature(alert.organisation)
        zone = self.services.timezone
        self._protected[alert_id] = category.protected
        self._kinds[alert_id] = alert.kind
        if action == "delete":  # only where the platform cannot delete (_follow_up)
            return recall_notice(t, alert, alert.parent_id or alert.id)
        if action == "send":
            copy = delivered_alert(t, alert, category, signature, sent_on(alert), zone)
            return await self._with_photo(alert, copy)
        parent = await stores.alerts.get(alert.parent_id or alert.id)
        assert parent is not None
        # The copy edited may be the alert's or one of its updates' (a protected alert's
        # updates are redacted too): how and when it ended are the alert's.
        root = await stores.alerts.get(parent.parent_id or parent.id)
        assert root is not None
        how = "ended" if root.closed == "ended" else "expired"
        closed = root.closed_at or alert.decided_at or alert.created_at
        return closed_copy(t, parent, category, how, closed, signature, sent_on(parent), zone)

    async def _with_photo(self, alert: Alert, copy: Outgoing) -> Outgoing:
        """The copy with the alert's photo, if it has one: read once per broadcast (the
        rendered copy is kept), uploaded once per platform (bot/transports/uploads.py)."""
        if alert.kind != "alert":
            return copy
        photo = await self.services.stores.photos.get(alert.id)
        return copy if photo is None else replace(copy, attachment=photo.attachment(alert.id))

    # -- resolution, progress, reports -------------------------------------------------------

    async def _resolver(self) -> None:
        """Write the rest of each broadcast's recipients, chunk by chunk."""
        while True:
            try:
                await _wait(self._senders_went, SENDERS_FIRST)
                busy = await self.resolve_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recipient resolution failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            if not busy:
                self._resolve_wake.clear()
                await _wait(self._resolve_wake, 30.0)

    async def resolve_once(self) -> bool:
        pending = await self.services.stores.alerts.resolving()
        for alert_id, after in pending:
            await resolve_more(self.services, alert_id, after, self.services.clock.now())
            for event in self._wake.values():
                event.set()
        return bool(pending)

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            try:
                await self.post_progress()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("progress update failed")

    async def post_progress(self) -> None:
        """One message per long broadcast in the officers' channels, edited as it goes
        (every few seconds: well within the platforms' edit limits)."""
        stores = self.services.stores
        for alert in await stores.alerts.broadcasting():
            counts = await stores.deliveries.counts(alert.id, MAIN_ACTION.get(alert.kind, "send"))
            if counts.total < PROGRESS_FROM:
                continue
            message = Outgoing(progress(self._staff, alert, counts, self._elapsed(alert),
                                        self._limit_text(alert)))
            if await stores.alerts.posts(PROGRESS, alert.id):
                await self.perform(Effects.of(EditTracked(PROGRESS, alert.id, message)))
            else:
                await self.perform(Effects.of(ToOfficers(message, track=(PROGRESS, alert.id),
                                                         organisation=alert.organisation)))

    def _elapsed(self, alert: Alert) -> float:
        started = alert.broadcast_started_at or alert.created_at
        finished = alert.completed_at or self.services.clock.now()
        return max((finished - started).total_seconds(), 0.0)

    def _limit_text(self, alert: Alert) -> str:
        staff = self._staff
        return ", ".join(f"{p} {staff.number(self.pacers[p].rate, 2, trim=True)}/s"
                         for p in self.pacers)

    async def finish_completed(self) -> None:
        """Close broadcasts with nothing left to send, and report each exactly once."""
        self._finish_checked = self._loop_time()
        stores, now = self.services.stores, self.services.clock.now()
        for alert_id in await stores.alerts.broadcasts_without_work():
            await stores.alerts.transition(alert_id, AlertStatus.BROADCASTING, AlertStatus.DONE,
                                           "system", now)
        for alert_id in await stores.alerts.unreported_broadcasts():
            if await stores.alerts.mark_reported(alert_id, now):
                await self.perform(await self._report(alert_id))

    async def _platform_notes(self, alert: Alert) -> list[str]:
        """What the report adds for platforms that could not do what was asked (edit,
        delete: follow-ups were sent) and for those that charge per message."""
        staff, notes = self._staff, []
        deliveries = self.services.stores.deliveries
        for platform, transport in self.transports.items():
            if transport.capabilities.edit and transport.capabilities.delete:
                continue
            followed = await deliveries.follow_ups_sent(alert.id, platform)
            if followed:
                notes.append(staff("render.report_follow_ups", count=followed))
                # A recall, or a missing person's description: what the copy said stays.
                if alert.kind in ("recall", "redact") or \
                        self.services.reference.categories[alert.category].protected:
                    notes.append(staff("render.report_originals_stay",
                                       count=staff.number(followed)))
        price = self.services.config.whatsapp.cost_per_message
        if "whatsapp" in self.transports and price > 0:
            cost = await WhatsAppStore(self.services.db).alert_cost(alert.id, price)
            if cost.billed:
                notes.append(staff("render.report_cost", cost=staff.number(cost.euros, 2),
                                   count=staff.number(cost.billed),
                                   price=staff.number(price, 4, trim=True)))
        return notes

    async def _report(self, alert_id: int) -> Effects:
        stores = self.services.stores
        alert = await stores.alerts.get(alert_id)
        assert alert is not None
        counts = await stores.deliveries.counts(alert_id, MAIN_ACTION.get(alert.kind, "send"))
        text = report(self._staff, alert, counts, self._elapsed(alert), self._limit_text(alert))
        message = Outgoing(text)
        for key in [key for key in self._rendered if key[0] == alert_id]:
            del self._rendered[key]
        for receipted in [key for key in self._receipted if key[0] == alert_id]:
            del self._receipted[receipted]
        self._protected.pop(alert_id, None)
        self._kinds.pop(alert_id, None)
        self._copies_out.discard(alert_id)
        notes = await self._platform_notes(alert)
        if notes:
            message = Outgoing("\n".join([text, *notes]))
        effects = Effects.of(ToOfficers(message, organisation=alert.organisation))
        if await stores.alerts.posts(PROGRESS, alert_id):
            effects += Effects.of(EditTracked(PROGRESS, alert_id, message))
        if alert.kind not in ("expiry", "redact"):  # nobody asked: the officers are enough
            requester = ChatRef(alert.request_platform, alert.request_chat_id)
            effects += Effects.of(Notify(requester, message))
        return effects
