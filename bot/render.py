"""How previews, approval requests and reports read, in text and in HTML; the copy
recipients receive is bot/alert_copy.py's.

Every fragment typed by a person goes through ``html.escape`` before it is put in
HTML: the HTML rendering is what Telegram and Matrix display.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import Outgoing
from bot.i18n import Translator
from bot.reference import Reference
from bot.storage.alerts import Alert
from bot.storage.deliveries import DeliveryCounts, Reach

MAX_NAMES_SHOWN = 12
RATE_FROM = 100  # messages: below, an average rate says nothing (two sends in 4 ms: 500/s)


@dataclass(frozen=True)
class AlertFacts:
    """What a preview or a request shows besides the alert itself."""

    place: str  # the perimeter in words (bot/place.py)
    commune_names: list[str]  # the communes the operator named first (place.named_first)
    communities: list[str]
    reach: Reach
    population: int
    stale: bool


def names_line(t: Translator, names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    hidden = len(names) - MAX_NAMES_SHOWN
    return shown + (t("render.and_more", count=hidden) if hidden > 0 else "")


def community_labels(reference: Reference, keys: list[str], all_communities: bool,
                     t: Translator) -> str:
    if all_communities:
        return t("render.everyone")
    return ", ".join(reference.communities[k].label for k in keys if k in reference.communities)


def alert_summary(t: Translator, reference: Reference, alert: Alert, facts: AlertFacts,
                  facts_local: datetime) -> str:
    category = reference.categories[alert.category]
    lines = [t("render.exercise_line")] if alert.exercise else []
    if alert.parent_id is not None:
        lines.append(t("render.followup_of", number=alert.parent_id))
    lines += [
        t("render.category", label=category.label),
        t("render.perimeter", perimeter=facts.place,
          communes=t("quantity.communes", count=len(facts.commune_names)),
          names=names_line(t, facts.commune_names)),
        t("render.audience", labels=community_labels(
            reference, facts.communities, alert.all_communities, t)),
        t("render.facts_at", time=t.when(facts_local)),
        t("render.reach", subscribers=t("quantity.subscribers", count=facts.reach.subscribers),
          groups=t("quantity.groups", count=facts.reach.groups),
          population=t("quantity.inhabitants", count=facts.population)),
    ]
    if facts.stale:
        age = _minutes(category.max_fact_age)
        lines.append(t("render.stale_warning", minutes=age, number=alert.id))
    if category.required_approvals > 1:
        lines.append(t("render.needs_approvals", count=category.required_approvals))
    return "\n".join(lines)


def _minutes(delta: timedelta | None) -> int:
    return 0 if delta is None else int(delta.total_seconds() // 60)


def preview(t: Translator, summary: str, alert: Alert, as_delivered: Outgoing) -> str:
    return "\n".join([
        t("render.preview_title", number=alert.id), summary, "",
        t("render.as_delivered"), "┈┈┈┈┈┈┈┈", as_delivered.text, "┈┈┈┈┈┈┈┈",
        t("render.sent_for_approval")])


def approval_request(t: Translator, summary: str, alert: Alert, requested_local: datetime,
                     as_delivered: Outgoing, status_line: str, who: str) -> tuple[str, str]:
    """``who``: the requester as people read them (bot/people.py), never their id."""
    head = t("render.request_title", number=alert.id, who=who, time=t.when(requested_local))
    # How to decide, only while there is something to decide: a decided request shows
    # its decision, not commands that would now be refused.
    hint = [t("render.request_hint", number=alert.id)] if alert.status == "pending" else []
    text = "\n".join([head, summary, "", as_delivered.text, "", status_line, *hint])
    markup = "\n".join([
        f"<b>{html.escape(head)}</b>", html.escape(summary), "",
        f"<blockquote>{as_delivered.html or html.escape(as_delivered.text)}</blockquote>",
        "", f"<b>{html.escape(status_line)}</b>", *map(html.escape, hint)])
    return text, markup


def sent_on(alert: Alert) -> datetime:
    """The moment a copy gives as its own: when its broadcast started — for a scheduled
    message the day it goes (each week's, for a weekly one), not the day it was approved."""
    return alert.broadcast_started_at or alert.send_at or alert.decided_at or alert.created_at


def duration(t: Translator, seconds: float) -> str:
    return t.number(seconds, 1 if seconds >= 1 else 2)


MAIN_ACTION = {"recall": "delete", "expiry": "edit", "redact": "edit"}  # others: "send"
REPORT = {"recall": "render.report_recall", "expiry": "render.report_expiry",
          "update": "render.report_update", "all_clear": "render.report_all_clear",
          "closing": "render.report_all_clear", "redact": "render.report_redact"}
# What the main action's sent / failed / blocked counts are called, by kind (recall, expiry
# and redaction delete or edit copies); others: "quantity.sent", "failed", "blocked".
COUNTED = {"recall": ("quantity.copies_deleted", "quantity.not_deleted",
                      "quantity.recipients_gone"),
           "expiry": ("quantity.copies_expired", "quantity.not_edited", "quantity.blocked"),
           "redact": ("quantity.copies_redacted", "quantity.not_edited", "quantity.blocked")}
SENT = ("quantity.sent", "quantity.failed", "quantity.blocked")


def rate(t: Translator, done: int, seconds: float) -> str:
    return t.number(done / seconds, 1) if seconds > 0 else "—"


def progress(t: Translator, alert: Alert, counts: DeliveryCounts, seconds: float,
             limits: str) -> str:
    done = counts.total - counts.pending - counts.sending
    percent = 100 * done // counts.total if counts.total else 100
    return t("render.progress", number=alert.id, done=t.number(done),
             total=t.number(counts.total), percent=percent,
             sent=t("quantity.sent", count=counts.sent), rate=rate(t, counts.sent, seconds),
             limits=limits, seconds=duration(t, seconds))


def report(t: Translator, alert: Alert, counts: DeliveryCounts, seconds: float,
           limits: str = "") -> str:
    """``counts`` are those of the kind's main action (see MAIN_ACTION)."""
    sent, failed, blocked = COUNTED.get(alert.kind, SENT)
    lines = [t(REPORT.get(alert.kind, "render.report"), number=alert.id,
               parent=alert.parent_id or alert.id, sent=t(sent, count=counts.sent),
               failed=t(failed, count=counts.failed), blocked=t(blocked, count=counts.blocked),
               total=t.number(counts.total), seconds=duration(t, seconds))]
    if counts.sent >= RATE_FROM and seconds > 0:
        lines.append(t("render.report_rate", rate=rate(t, counts.sent, seconds), limits=limits))
    if counts.maybe_duplicates:
        lines.append(t("render.report_duplicates", count=counts.maybe_duplicates))
    if counts.acknowledged:
        lines.append(t("render.report_receipts", count=counts.acknowledged))
    return "\n".join(lines)
