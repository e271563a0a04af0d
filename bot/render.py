"""How alerts, previews, approval requests and reports read, in text and in HTML.

Every fragment typed by a person goes through ``html.escape`` before it is put in
HTML: the HTML rendering is what Telegram and Matrix display.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import Outgoing, Tone
from bot.i18n import Translator
from bot.reference import Category, Reference
from bot.storage.alerts import Alert
from bot.storage.deliveries import DeliveryCounts, Reach

MAX_NAMES_SHOWN = 12


@dataclass(frozen=True)
class AlertFacts:
    """What a preview or a request shows besides the alert itself."""

    commune_names: list[str]
    communities: list[str]
    reach: Reach
    population: int
    stale: bool


def when(moment: datetime) -> str:
    return moment.strftime("%d/%m à %H:%M")


def thousands(number: int) -> str:
    return f"{number:,}".replace(",", "\u202f")


def names_line(t: Translator, names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    hidden = len(names) - MAX_NAMES_SHOWN
    return shown + (t("render.and_more", count=hidden) if hidden > 0 else "")


def community_labels(reference: Reference, keys: list[str], all_communities: bool,
                     t: Translator) -> str:
    if all_communities:
        return t("render.everyone")
    return ", ".join(reference.communities[k].label for k in keys if k in reference.communities)


def delivered_alert(t: Translator, alert: Alert, category: Category,
                    local_time: datetime) -> Outgoing:
    """The message subscribers receive."""
    footer = t("render.alert_footer", number=alert.id, time=when(local_time))
    headline = t("render.alert_headline", category=category.label, perimeter=alert.perimeter)
    text = f"{headline}\n\n{alert.body}\n\n{footer}"
    markup = (f"<b>{html.escape(headline)}</b>\n\n{html.escape(alert.body)}\n\n"
              f"<i>{html.escape(footer)}</i>")
    tone = Tone.PROTECTED if category.protected else (
        Tone.QUIET if category.severity == "low" else Tone.NORMAL)
    return Outgoing(text, markup, tone=tone)


def alert_summary(t: Translator, reference: Reference, alert: Alert, facts: AlertFacts,
                  facts_local: datetime) -> str:
    category = reference.categories[alert.category]
    lines = [
        t("render.category", label=category.label),
        t("render.perimeter", perimeter=alert.perimeter, count=len(facts.commune_names),
          names=names_line(t, facts.commune_names)),
        t("render.audience", labels=community_labels(
            reference, facts.communities, alert.all_communities, t)),
        t("render.facts_at", time=when(facts_local)),
        t("render.reach", subscribers=facts.reach.subscribers, groups=facts.reach.groups,
          population=thousands(facts.population)),
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
                     as_delivered: Outgoing, status_line: str) -> tuple[str, str]:
    head = t("render.request_title", number=alert.id, who=alert.requested_by,
             time=when(requested_local))
    hint = t("render.request_hint", number=alert.id)
    text = "\n".join([head, summary, "", as_delivered.text, "", status_line, hint])
    markup = "\n".join([
        f"<b>{html.escape(head)}</b>", html.escape(summary), "",
        f"<blockquote>{as_delivered.html or html.escape(as_delivered.text)}</blockquote>",
        "", f"<b>{html.escape(status_line)}</b>", html.escape(hint)])
    return text, markup


def report(t: Translator, alert: Alert, counts: DeliveryCounts, seconds: float) -> str:
    lines = [t("render.report", number=alert.id, sent=counts.sent, failed=counts.failed,
               blocked=counts.blocked, total=counts.total, seconds=f"{seconds:.1f}")]
    if counts.maybe_duplicates:
        lines.append(t("render.report_duplicates", count=counts.maybe_duplicates))
    return "\n".join(lines)
