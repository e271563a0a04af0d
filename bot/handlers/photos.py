"""A photo an operator sends on its own (no command with it): for the guided alert under
way, for the alert they just filed, or kept for their next one (bot/alert_photos.py)."""

from __future__ import annotations

from bot.alert_approval import REQUEST, officers_request
from bot.alert_photos import (
    DRAFT_KEPT,
    GUIDED,
    brought,
    is_photo,
    keep_for_next,
    officers_post,
    refusal_text,
)
from bot.context import Context
from bot.domain import EditTracked, Effects
from bot.enums import AlertStatus
from bot.photos import Photo, size_text
from bot.roles import Action
from bot.storage.alerts import Alert


def wanted(ctx: Context) -> bool:
    """A photo (or one the transport could not fetch) from someone who may file alerts."""
    incoming = ctx.incoming
    attachment = incoming.attachment
    photo_like = incoming.file_problem is not None or (
        attachment is not None and is_photo(attachment))
    return photo_like and ctx.may(Action.ISSUE_ALERT)


async def received(ctx: Context, conversation_kind: str | None) -> Effects:
    came = brought(ctx)
    if came.refused is not None:
        return ctx.text(refusal_text(ctx.t, came.refused))
    assert came.photo is not None
    photo = came.photo
    size = size_text(ctx.t, photo.size)
    if conversation_kind == GUIDED:
        replaced = await keep_for_next(ctx, photo)
        return ctx.answer("photo.replaced_guided" if replaced else "photo.kept_guided",
                          size=size)
    alert = await _just_filed(ctx)
    if alert is not None:
        return await _attach_after(ctx, alert, photo)
    replaced = await keep_for_next(ctx, photo)
    return ctx.answer("photo.replaced" if replaced else "photo.kept", size=size,
                      minutes=int(DRAFT_KEPT.total_seconds() // 60))


async def _just_filed(ctx: Context) -> Alert | None:
    """The alert this operator filed in this chat within ``DRAFT_KEPT``, still pending."""
    chat = ctx.incoming.chat
    alert_id = await ctx.stores.photos.latest_alert(ctx.who, chat.platform, chat.chat_id,
                                                    ctx.now - DRAFT_KEPT)
    alert = None if alert_id is None else await ctx.stores.alerts.get(alert_id)
    return alert if alert is not None and alert.status == AlertStatus.PENDING else None


async def _attach_after(ctx: Context, alert: Alert, photo: Photo) -> Effects:
    """The photo joins the request before any officer approved it: what officers approve
    is what goes out. The request is edited to say so, and the photo posted under it."""
    if await ctx.stores.photos.info(alert.id) is not None:
        return ctx.answer("photo.one_per_alert", number=alert.id)
    if await ctx.stores.alerts.approvals(alert.id):
        return ctx.answer("photo.too_late", number=alert.id)
    await ctx.stores.photos.attach(alert.id, photo, ctx.now)
    await ctx.audit("alert.photo_attached", alert.id, size=photo.size,
                    type=photo.kind.mime_type)
    staff = ctx.staff_t  # the officers' channels read the staff language
    request = await officers_request(ctx, staff, alert, staff("approval.waiting"))
    return (ctx.answer("photo.attached", number=alert.id, size=size_text(ctx.t, photo.size))
            + Effects.of(EditTracked(REQUEST, alert.id, request, alert.organisation))
            + officers_post(staff, alert.id, photo, alert.organisation))
