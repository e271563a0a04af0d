"""Subscriber commands: enrollment, communes, communities, pause, language, help, stop."""

from __future__ import annotations

from bot.commands import Command
from bot.context import Context
from bot.conversations.enrollment import EnrollmentFlow, summary_text
from bot.conversations.places import Resolution, describe_commune, resolve_places
from bot.conversations.unsubscribe import UnsubscribeFlow
from bot.deferred import my_data_recipe
from bot.domain import Effects, Outgoing
from bot.i18n import LANGUAGES
from bot.privacy import export_subscriber
from bot.roles import Action
from bot.storage.subscribers import Subscriber

ENROLLMENT = EnrollmentFlow()
CANDIDATES_LISTED = 8  # per doubtful place, in /communes's one-line answer
UNSUBSCRIBE = UnsubscribeFlow()


async def start(ctx: Context, args: str) -> Effects:
    """``/start``, or ``/start <code>``: the code a link carried (Telegram's
    t.me/<bot>?start=<code> sends it) or that someone typed."""
    code = args.strip()
    if not code:
        return await _start(ctx)
    recognised = await start_code(ctx, code)
    if recognised is not None:
        return recognised
    # Not a code this bot issued (a mistyped or old link): said plainly, then the
    # ordinary /start, so the person is never stuck. (A deep link's code is at most 64.)
    return ctx.answer("subscriber.unknown_code", code=code[:64]) + await _start(ctx)


async def start_code(ctx: Context, code: str) -> Effects | None:
    """What a start code does, or None for a code this bot does not know. None issued
    yet: invitation tokens (issue 17) are recognised here."""
    return None


async def _start(ctx: Context) -> Effects:
    if ctx.subscriber is None:
        return await ENROLLMENT.begin(ctx)
    profile = await ctx.stores.subscribers.profile(ctx.subscriber)
    already = ctx.answer("subscriber.already", summary=summary_text(ctx, profile.communities,
                                                                     profile.communes))
    if ctx.subscriber.status == "paused":
        return already + ctx.answer("subscriber.paused_hint")
    return already


def require_subscriber(ctx: Context) -> Subscriber | Effects:
    """The caller's subscription, or the answer that they have none."""
    return ctx.answer("subscriber.not_enrolled") if ctx.subscriber is None else ctx.subscriber


async def communes(ctx: Context, args: str) -> Effects:
    subscriber = require_subscriber(ctx)
    if isinstance(subscriber, Effects):
        return subscriber
    current = (await ctx.stores.subscribers.profile(subscriber)).communes
    if not args:
        return _show_communes(ctx, current)
    mode, text = _edit_mode(args)
    resolution = resolve_places(ctx.geo, ctx.t, text, home=current)
    if resolution.problems or resolution.questions:
        return _refuse_partial(ctx, resolution)
    codes = [c.insee for c in resolution.found]
    updated = _apply(mode, current, codes)
    if not updated:
        return ctx.answer("subscriber.communes_last")
    await ctx.stores.subscribers.set_communes(subscriber, updated, ctx.now)
    return _show_communes(ctx, updated)


def _edit_mode(args: str) -> tuple[str, str]:
    if args[0] in "+-":
        return args[0], args[1:].strip()
    return "=", args


def _apply(mode: str, current: list[str], codes: list[str]) -> list[str]:
    if mode == "+":
        return sorted(set(current) | set(codes))
    if mode == "-":
        return sorted(set(current) - set(codes))
    return sorted(set(codes))


def _refuse_partial(ctx: Context, resolution: Resolution) -> Effects:
    """Apply nothing unless every place was understood: a half-applied list loses data.
    Each doubtful place is one line with what it may mean, as it can be typed back."""
    lines = [*resolution.problems]
    for question in resolution.questions:
        shown = question.candidates[:CANDIDATES_LISTED]
        labels = [question.label(c) for c in map(ctx.geo.by_insee, shown) if c is not None]
        more = len(question.candidates) - len(shown)
        lines.append(f"{question.text(ctx.t)} {', '.join(labels)}"
                     + (ctx.t("places.and_more", count=more) if more > 0 else ""))
    if resolution.questions:
        lines.append(ctx.t("subscriber.retype_commune"))
    lines.append(ctx.t("subscriber.nothing_changed"))
    return ctx.text("\n".join(lines))


def _show_communes(ctx: Context, codes: list[str]) -> Effects:
    names = [describe_commune(c) for c in filter(None, map(ctx.geo.by_insee, codes))]
    return ctx.answer("subscriber.communes", list=", ".join(names) or "—")


async def profile(ctx: Context, args: str) -> Effects:
    subscriber = require_subscriber(ctx)
    if isinstance(subscriber, Effects):
        return subscriber
    current = await ctx.stores.subscribers.profile(subscriber)
    if not args:
        return ctx.answer("subscriber.profile", summary=summary_text(ctx, current.communities,
                                                                      current.communes),
                          status=ctx.t(f"subscriber.status.{subscriber.status}"))
    keys, unknown = _communities_from(ctx, args)
    if unknown or not keys:
        return ctx.answer("subscriber.unknown_community", typed=", ".join(unknown) or args,
                          known=", ".join(ctx.reference.communities))
    await ctx.stores.subscribers.set_communities(subscriber, keys, ctx.now)
    return ctx.answer("subscriber.profile_updated",
                      summary=summary_text(ctx, keys, current.communes))


def _communities_from(ctx: Context, text: str) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    unknown: list[str] = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        community = ctx.reference.community(part)
        if community is None:
            unknown.append(part)
        else:
            keys.append(community.key)
    return keys, unknown


async def pause(ctx: Context, args: str) -> Effects:
    return await _set_status(ctx, "paused", "subscriber.paused")


async def resume(ctx: Context, args: str) -> Effects:
    return await _set_status(ctx, "active", "subscriber.resumed")


async def _set_status(ctx: Context, status: str, said: str) -> Effects:
    subscriber = require_subscriber(ctx)
    if isinstance(subscriber, Effects):
        return subscriber
    await ctx.stores.subscribers.set_status(subscriber.id, status, ctx.now)
    return ctx.answer(said)


async def language(ctx: Context, args: str) -> Effects:
    wanted = args.strip().lower()
    if wanted not in LANGUAGES:
        return ctx.answer("subscriber.language_usage", languages=", ".join(LANGUAGES))
    if ctx.subscriber is not None:
        await ctx.stores.subscribers.set_language(ctx.subscriber, wanted, ctx.now)
    ctx.t.language = wanted
    return ctx.answer("subscriber.language_set")


async def stop(ctx: Context, args: str) -> Effects:
    subscriber = require_subscriber(ctx)
    if isinstance(subscriber, Effects):
        return subscriber
    return await UNSUBSCRIBE.begin(ctx)


async def my_data(ctx: Context, args: str) -> Effects:
    """``/mesdonnees``: everything held about the caller, as a file."""
    subscriber = require_subscriber(ctx)
    if isinstance(subscriber, Effects):
        return subscriber
    data = await export_subscriber(ctx.services, subscriber)
    # The file is made after commit, from what is read here (bot/deferred.py).
    effects = ctx.message(Outgoing(
        ctx.t("subscriber.my_data",
              alerts=ctx.t("quantity.alerts_received", count=len(data["alerts_received"])),
              communes=ctx.t("quantity.communes", count=len(data["communes"]))),
        deferred=my_data_recipe(ctx.t.language, data),
        if_file_fails=ctx.t("subscriber.my_data_unsent")))
    await ctx.audit("subscriber.data_exported")
    return effects


async def cancel(ctx: Context, args: str) -> Effects:
    existing = await ctx.stores.conversations.get(ctx.who)
    await ctx.stores.conversations.delete(ctx.who)
    return ctx.answer("conversation.cancelled" if existing else "conversation.nothing_to_cancel")


COMMANDS = [
    Command("start", start, Action.SUBSCRIBE, "help.start", aliases=("inscription",)),
    Command("communes", communes, Action.SUBSCRIBE, "help.communes"),
    Command("profil", profile, Action.SUBSCRIBE, "help.profil"),
    Command("pause", pause, Action.SUBSCRIBE, "help.pause"),
    Command("reprise", resume, Action.SUBSCRIBE, "help.reprise"),
    Command("langue", language, Action.SUBSCRIBE, "help.langue", aliases=("language",),
            keeps_conversation=True),
    # Keeps the open conversation: it is part of what the export shows.
    Command("mesdonnees", my_data, Action.SUBSCRIBE, "help.mesdonnees",
            aliases=("mydata", "donnees"), keeps_conversation=True),
    Command("stop", stop, Action.SUBSCRIBE, "help.stop", aliases=("desinscription", "oubli")),
    Command("annuler", cancel, Action.SUBSCRIBE, "help.annuler", aliases=("cancel",),
            in_groups=True, keeps_conversation=True),
]
