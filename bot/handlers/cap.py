"""CAP 1.2: ``/cap N`` exports an alert; a CAP file sent by an operator becomes a draft."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from bot.alert_copy import spoken_body
from bot.cap import CapError, CapReference, CapSettings, CapSource, cap_source
from bot.cap import cap_to_draft as read_cap
from bot.commands import Command, small_number
from bot.context import Context
from bot.conversations.cap_draft import CAP_DRAFT
from bot.deferred import cap_recipe
from bot.domain import Attachment, Effects, Outgoing
from bot.geo.perimeter import PerimeterError, parse_perimeter
from bot.handlers.lifecycle import visible
from bot.limits import CAP_DOCUMENT_BYTES
from bot.roles import Action
from bot.storage.alerts import Alert

MSG_TYPE = {"alert": "Alert", "update": "Update"}  # every other follow-up closes: Cancel


def _settings(ctx: Context, alert: Alert) -> CapSettings:
    """The issuing organisation is the CAP sender (``sender``, ``senderName``); the
    implicit one keeps the deployment's defaults."""
    if ctx.organisations.implicit:
        return CapSettings(timezone=ctx.config.timezone)
    organisation = ctx.organisations.get(alert.organisation)
    return CapSettings(sender=organisation.cap_sender, sender_name=organisation.name,
                       timezone=ctx.config.timezone)


async def export(ctx: Context, args: str) -> Effects:
    """``/cap N`` — the alert (or follow-up) N as an OASIS CAP 1.2 file."""
    number = small_number(args)
    alert = None if number is None else await ctx.stores.alerts.get(number)
    if alert is not None and not visible(ctx, alert):
        alert = None  # another organisation's: as if it did not exist
    if alert is None:
        return ctx.answer("capcmd.usage" if number is None else "approval.not_found",
                          number=number)
    # The document is made after commit, from what is read here (bot/deferred.py).
    return ctx.message(Outgoing(
        ctx.t("capcmd.exported", number=alert.id),
        deferred=cap_recipe(ctx.t.language, await _cap_alert(ctx, alert))))


async def _cap_alert(ctx: Context, alert: Alert) -> CapSource:
    stores, settings = ctx.stores, _settings(ctx, alert)
    references: list[CapReference] = []
    revision = 0
    if alert.parent_id is not None:
        parent = await stores.alerts.get(alert.parent_id)
        assert parent is not None
        references.append(CapReference(settings.sender, settings.identifier(parent.id),
                                       _sent(ctx, parent)))
        siblings = [child.id for child in await stores.alerts.children(parent.id)]
        revision = siblings.index(alert.id) + 1
    labels = ctx.reference.communities
    audience = [] if alert.all_communities else [
        labels[key].label for key in await stores.alerts.communities(alert.id) if key in labels]
    return cap_source(
        replace(alert, body=spoken_body(ctx.t, alert)),
        category=ctx.reference.categories[alert.category],
        communes=await stores.alerts.communes(alert.id),
        sent=_sent(ctx, alert), settings=settings, audience=audience,
        status="Exercise" if alert.exercise else "Actual",
        msg_type=MSG_TYPE.get(alert.kind, "Cancel"), references=references, revision=revision)


def _sent(ctx: Context, alert: Alert) -> datetime:
    return ctx.local(alert.decided_at or alert.created_at)


async def import_file(ctx: Context, attachment: Attachment) -> Effects:
    """A CAP file from an operator: shown as the equivalent /alerte, submitted on request."""
    if len(attachment.data) > CAP_DOCUMENT_BYTES:
        return ctx.answer("cap.too_large", size=len(attachment.data), max=CAP_DOCUMENT_BYTES)
    try:
        draft = read_cap(attachment.data, ctx.geo, max_radius_km=ctx.config.geo.max_radius_km)
    except CapError as error:
        return ctx.answer(error.key, **error.params)
    category = draft.category or "prevention"
    text = re.sub(r"\s+", " ", " ".join(filter(None, (draft.headline, draft.description))))
    command = f"{category} {_perimeter(ctx, draft.perimeter_text, draft.communes)} : {text}"
    if draft.status == "Exercise":
        command = command.replace(" : ", " exercice : ", 1)
    return await CAP_DRAFT.begin(ctx, command=command, guessed=draft.category is not None)


def _perimeter(ctx: Context, text: str, communes: frozenset[str]) -> str:
    """The file's own perimeter when it reads back to the same communes, else the codes."""
    try:
        if parse_perimeter(text, ctx.geo).communes == communes:
            return text
    except PerimeterError:
        pass
    return ", ".join(sorted(communes))


COMMANDS = [Command("cap", export, Action.CLOSE_ALERT, "help.cap", in_groups=True)]
