"""The copy: what subscribers and groups receive for an alert, its updates and all-clear.

This module decides it for every platform: the headline (an icon and words by the
category's severity, the category, a readable place), when the facts happened, the
operator's text, the issuer's signature; it gives it as plain text and as HTML (user text
escaped). Each transport only formats that for its platform (Telegram HTML, Matrix HTML
and plain body, console text). Golden copies of each kind of perimeter on each platform:
``tests/test_copy_golden.py``.

Prevention is not an alert: no 🚨, no « Faits : » line, and its footer says « message »,
not « alerte ».
"""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from bot.buttons import ReceiptButton, TipButton, button
from bot.domain import Choice, Outgoing, Summary, Tone
from bot.i18n import Translator
from bot.place import areas_from_json, place_text
from bot.reference import Category
from bot.storage.alerts import Alert

# The icon of a copy's headline, by its category's severity (bot/reference.py).
SEVERITY_ICON = {"high": "🚨", "medium": "⚠️", "low": "ℹ️"}
PREVENTION = "low"  # the severity of advice rather than warning
FACTS_AGE_SHOWN = timedelta(hours=24)  # older facts: the date says enough


def alert_place(t: Translator, alert: Alert, counted: bool = True) -> str:
    """The alert's perimeter in words, in ``t``'s language (its stored text for an alert
    from before the words were kept)."""
    areas = areas_from_json(alert.perimeter_json)
    return place_text(t, areas, counted) if areas else alert.perimeter


def is_prevention(category: Category) -> bool:
    return category.severity == PREVENTION


def delivered_alert(t: Translator, alert: Alert, category: Category, signature: str,
                    at: datetime, zone: tzinfo) -> Outgoing:
    """The message recipients receive, for an alert or a follow-up (update, all-clear).

    ``at`` is the moment of the copy (its approval, or now for a preview): the footer's
    time and what « il y a 25 min » counts from; ``zone`` the time zone people read."""
    number = alert.parent_id or alert.id
    headline = _headline(t, alert, category)
    footer = t("copy.footer_prevention" if is_prevention(category) else "copy.footer_alert",
               signature=signature, number=number, time=t.when(at.astimezone(zone)))
    if alert.exercise:
        headline = t("render.exercise") + " " + headline
        footer += t("render.exercise_footer")
    facts = facts_line(t, alert, category, at, zone)
    copy = _compose(headline, facts, spoken_body(t, alert), footer, _tone(category))
    short = _short_headline(t, alert, category)
    if alert.exercise:
        short = t("render.exercise") + " " + short
    text = "\n".join(part for part in (facts, spoken_body(t, alert), footer) if part)
    return replace(copy, summary=Summary(short, alert_place(t, alert), text))


def _short_headline(t: Translator, alert: Alert, category: Category) -> str:
    """The headline without its place, which a template carries apart (docs/whatsapp.md)."""
    if alert.kind == "update":
        return t("summary.update_headline", category=category.label)
    if alert.kind in ("all_clear", "closing"):
        key = ("summary.end_headline_prevention" if is_prevention(category)
               else "summary.end_headline")
        return t(key, category=category.label)
    icon = SEVERITY_ICON.get(category.severity, SEVERITY_ICON["high"])
    return t("summary.headline", icon=icon, category=category.label)


def _headline(t: Translator, alert: Alert, category: Category) -> str:
    place = alert_place(t, alert)
    if alert.kind == "update":
        return t("copy.update_headline", category=category.label, place=place)
    if alert.kind in ("all_clear", "closing"):
        key = "copy.end_headline_prevention" if is_prevention(category) else "copy.end_headline"
        return t(key, category=category.label, place=place)
    icon = SEVERITY_ICON.get(category.severity, SEVERITY_ICON["high"])
    return t("copy.headline", icon=icon, category=category.label, place=place)


def facts_line(t: Translator, alert: Alert, category: Category, at: datetime,
               zone: tzinfo) -> str:
    """« Faits : aujourd'hui vers 14:30 (il y a 25 min) », or "" when a copy should not
    say it: prevention, a follow-up, or facts whose time nobody gave (``facts_at`` is then
    the filing time, which the fact-age rule checks, but a copy does not claim it)."""
    if alert.kind != "alert" or is_prevention(category) or not alert.facts_stated:
        return ""
    facts, now = alert.facts_at.astimezone(zone), at.astimezone(zone)
    day = _day(t, facts, now)
    age = now - facts if now > facts else timedelta(0)
    if age >= FACTS_AGE_SHOWN:
        return t("copy.facts_no_age", day=day, time=t.time(facts))
    return t("copy.facts", day=day, time=t.time(facts), age=_age(t, age))


def _day(t: Translator, facts: datetime, now: datetime) -> str:
    days = (now.date() - facts.date()).days
    if days <= 0:
        return t("copy.today")
    if days == 1:
        return t("copy.yesterday")
    return t("copy.on_date", date=t.day(facts))


def _age(t: Translator, age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return t("copy.age_just_now")
    if minutes < 60:
        return t("copy.age_minutes", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if minutes == 0:
        return t("copy.age_hours", hours=hours)
    return t("copy.age_hours_minutes", hours=hours, minutes=f"{minutes:02d}")


def _tone(category: Category) -> Tone:
    if category.protected:
        return Tone.PROTECTED
    return Tone.QUIET if is_prevention(category) else Tone.NORMAL


def _compose(headline: str, facts: str, body: str, footer: str, tone: Tone) -> Outgoing:
    head = f"{headline}\n{facts}" if facts else headline
    text = "\n\n".join(part for part in (head, body, footer) if part)
    markup = f"<b>{html.escape(headline)}</b>"
    markup += f"\n{html.escape(facts)}" if facts else ""
    markup += f"\n\n{html.escape(body)}" if body else ""
    return Outgoing(text, markup + f"\n\n<i>{html.escape(footer)}</i>", tone=tone)


def spoken_body(t: Translator, alert: Alert) -> str:
    """The text of a message: the operator's, or for an all-clear without one the bot's
    own words (stored empty, so the outbox can tell it carries no operator text)."""
    if alert.kind == "all_clear" and not alert.body:
        return t("lifecycle.default_end")
    return alert.body


def receipt_choices(t: Translator, alert_id: int) -> tuple[Choice, ...]:
    """Buttons on a delivered alert; the core checks the presser really received it."""
    return (button(t("render.receipt_button"), ReceiptButton(alert_id)),
            button(t("render.tip_button"), TipButton(alert_id)))


def recall_notice(t: Translator, alert: Alert, number: int) -> Outgoing:
    """A recall where the platform cannot delete the copy (WhatsApp): a message quoting it."""
    text = t("whatsapp.recalled", number=number)
    return Outgoing(text, html.escape(text), tone=Tone.QUIET,
                    summary=Summary(text, alert_place(t, alert), ""))


def closed_copy(t: Translator, alert: Alert, category: Category, how: str, closed: datetime,
                signature: str, original: datetime, zone: tzinfo) -> Outgoing:
    """What a delivered copy becomes when its alert ends or expires (``closed``: when;
    ``original``: the moment of the copy, as ``delivered_alert`` has it)."""
    banner = t(f"render.closed_{how}", time=t.when(closed.astimezone(zone)))
    headline = t("summary.closed", banner=banner, category=category.label)
    if category.protected:  # missing persons: the description and photo go
        redacted = t("render.redacted", number=alert.parent_id or alert.id)
        return Outgoing(banner + "\n" + redacted, tone=Tone.QUIET,
                        summary=Summary(headline, alert_place(t, alert), redacted))
    copy = delivered_alert(t, alert, category, signature, original, zone)
    summary = None if copy.summary is None else replace(copy.summary, headline=headline)
    return Outgoing(f"{banner}\n\n{copy.text}",
                    f"<b>{html.escape(banner)}</b>\n\n<s>{copy.html}</s>", tone=Tone.QUIET,
                    summary=summary)
