"""An operator's photo, from the moment it arrives to the end of the alert it shows.

How it arrives (the transports fetch it only for staff, bot/transports/*):

* **with the command**: a Telegram photo whose caption is the ``/alerte …`` line, the
  console's ``:photo FILE /alerte …``;
* **before the command**: on Matrix an image is its own event, so an operator's photo is
  kept (``photo_drafts``) for their next alert in the same chat, for ``DRAFT_KEPT``;
* **during the guided alert**: kept the same way, attached when the alert is submitted;
* **just after the command**: attached to the alert the operator filed in that chat
  within ``DRAFT_KEPT``, as long as no officer has approved it (what officers approve is
  what goes out): bot/handlers/photos.py.

One photo per alert. A photo that is refused (bot/photos.py) never holds the alert back:
the alert is filed without it and the operator is told why.

Then: the officers get it with the request (a tracked post, ``PHOTO``), recipients with
the copy (bot/broadcast/dispatcher.py), and its bytes are deleted when the alert no
longer lives (``forget``): refused, withdrawn, unapproved at its deadline, ended,
recalled or expired; a protected alert's photo is also deleted from the officers'
channels and from every copy (bot/closing.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.context import Context, Records, Services
from bot.deferred import photo_recipe
from bot.domain import NO_EFFECTS, Attachment, Effects, Outgoing, ToOfficers
from bot.i18n import Translator
from bot.limits import PHOTO_KEPT
from bot.photos import Photo, PhotoRefused, check_photo, problem_refusal, size_text, sniff
from bot.privacy import forget_in_files
from bot.storage.alerts import Alert

PHOTO = "photo"  # the tracked post of an alert's photo in the officers' channels
DRAFT_KEPT = PHOTO_KEPT
GUIDED = "alert"  # the guided alert's conversation kind


@dataclass(frozen=True)
class Brought:
    """The photo an event brought (checked), or why it was refused."""

    photo: Photo | None = None
    refused: PhotoRefused | None = None


def is_photo(attachment: Attachment) -> bool:
    """Whether a file a person sent is meant as a picture (then it is checked as one)."""
    return attachment.is_image or sniff(attachment.data) is not None


def brought(ctx: Context) -> Brought:
    """The photo that came with this event, if any, checked on its bytes."""
    incoming = ctx.incoming
    if incoming.file_problem is not None:
        return Brought(refused=problem_refusal(incoming.file_problem))
    attachment = incoming.attachment
    if attachment is None or not is_photo(attachment):
        return Brought()
    try:
        return Brought(photo=check_photo(attachment))
    except PhotoRefused as refused:
        return Brought(refused=refused)


def refusal_text(t: Translator, refused: PhotoRefused) -> str:
    return t(refused.key, **refused.params) + "\n" + t("photo.rules")


# -- before and during: kept for the next alert -------------------------------------------


async def keep_for_next(ctx: Context, photo: Photo) -> bool:
    """Kept for the operator's next alert in this chat; True if it replaced another."""
    chat = ctx.incoming.chat
    return await ctx.stores.photos.keep_draft(ctx.who, chat.platform, chat.chat_id, photo,
                                              ctx.now)


async def kept_photo(ctx: Context) -> Photo | None:
    """The operator's photo kept in this chat and still fresh."""
    chat = ctx.incoming.chat
    draft = await ctx.stores.photos.draft(ctx.who, chat.platform, chat.chat_id,
                                          ctx.now - DRAFT_KEPT)
    return None if draft is None else draft.photo


async def for_new_alert(ctx: Context) -> tuple[Photo | None, Effects]:
    """The photo a new alert takes: the one sent with the command, else the one kept in
    this chat; and what tells the operator about a photo that was refused. Either way the
    kept photo is used up: it belongs to this alert or to none."""
    came = brought(ctx)
    kept = await kept_photo(ctx)
    chat = ctx.incoming.chat
    await ctx.stores.photos.drop_draft(ctx.who, chat.platform, chat.chat_id)
    if came.refused is not None:
        return None, ctx.text(ctx.t("photo.not_attached") + " "
                              + refusal_text(ctx.t, came.refused))
    return came.photo or kept, NO_EFFECTS


async def keep_brought(ctx: Context, key: str) -> Effects:
    """The photo sent with a command that does not file the alert yet (a guided alert
    begins; a command that could not be read): kept for the alert to come, and the
    operator told so by ``key`` (or why it was refused)."""
    came = brought(ctx)
    if came.refused is not None:
        return ctx.text(refusal_text(ctx.t, came.refused))
    if came.photo is None:
        return NO_EFFECTS
    await keep_for_next(ctx, came.photo)
    return ctx.answer(key, size=size_text(ctx.t, came.photo.size), minutes=_minutes())


async def drop_kept(ctx: Context) -> None:
    """The operator abandoned the alert the photo was kept for."""
    chat = ctx.incoming.chat
    await ctx.stores.photos.drop_draft(ctx.who, chat.platform, chat.chat_id)


# -- with the request, and at the end ------------------------------------------------------


async def attach_new(ctx: Context, alert: Alert, photo: Photo | None) -> Effects:
    """Store the new alert's photo; its post for the officers (after the request)."""
    if photo is None:
        return NO_EFFECTS
    await ctx.stores.photos.attach(alert.id, photo, ctx.now)
    await ctx.audit("alert.photo_attached", alert.id, size=photo.size,
                    type=photo.kind.mime_type)
    return officers_post(ctx.staff_t, alert.id, photo, alert.organisation)


def officers_post(t: Translator, alert_id: int, photo: Photo,
                  organisation: str | None = None) -> Effects:
    """The photo in the officers' channels, read from the database when it is sent (its
    bytes are stored once, not in each channel's reply row)."""
    message = Outgoing(t("photo.officers_caption", number=alert_id),
                       deferred=photo_recipe(alert_id, photo))
    return Effects.of(ToOfficers(message, track=(PHOTO, alert_id), organisation=organisation))


async def summary_line(records: Records, t: Translator, alert: Alert) -> str:
    """« Photo jointe : JPEG, 245 Ko (1280 × 960) » for previews and requests; "" without."""
    info = await records.stores.photos.info(alert.id)
    if info is None:
        return ""
    return t("photo.summary", type=info.kind.name, size=size_text(t, info.size),
             width=info.width, height=info.height)


async def forget(records: Records, alert_id: int) -> bool:
    """The alert no longer lives (refused, withdrawn, unapproved at its deadline): its
    photo's bytes go. True if it had one."""
    return await records.stores.photos.forget(alert_id)


async def forget_at_end(services: Services, alert_id: int) -> None:
    """The alert ended (/fin, /retirer, expiry): its photo goes, from the database file and
    its write-ahead log too once committed, as an erasure does (a missing person's face
    must not linger in the file)."""
    if await forget(services, alert_id):
        db = services.db
        await db.after_commit(lambda: forget_in_files(db))


def _minutes() -> int:
    return int(DRAFT_KEPT.total_seconds() // 60)
