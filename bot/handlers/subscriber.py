"""Subscriber commands: enrollment, communes, communities, pause, language, help, stop."""

from __future__ import annotations

from bot.commands import Command
from bot.context import Context, staff_translator
from bot.conversations.enrollment import EnrollmentFlow, summary_text
from bot.conversations.places import Resolution, describe_commune, resolve_places
from bot.conversations.unsubscribe import UnsubscribeFlow
from bot.deferred import my_data_recipe
from bot.domain import NO_EFFECTS, ChatRef, Effects, Notify, Outgoing
from bot.i18n import LANGUAGES
from bot.invitations import PRESENTATION_CHARS, REQUEST_KEPT, looks_like_token, token_hash
from bot.limits import COMMUNES_PER_SUBSCRIBER
from bot.privacy import export_subscriber
from bot.roles import Action
from bot.storage.invitations import Invitation, InvitationState
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
    """What a start code does, or None for a code this bot does not know: an invitation's
    token (issue 17). A person whose codes were refused too often lately is not answered
    about any code until the guard lets them (``GuessGuard``): a guesser learns nothing."""
    guard = ctx.services.code_guard
    if guard.blocked(ctx.who, ctx.now):
        await ctx.audit("invitation.throttled")
        return ctx.answer("invite.too_many_codes")
    found = (await ctx.stores.invitations.by_hash(token_hash(code))
             if looks_like_token(code) else None)
    if found is None:
        guard.refused(ctx.who, ctx.now)
        await ctx.audit("invitation.forged")
        return None
    state = found.state(ctx.now)
    if state is not InvitationState.ACTIVE:
        await ctx.audit("invitation.refused", invitation=found.id, state=str(state))
        return ctx.answer(f"invite.refused.{state}", partner=found.partner)
    if ctx.subscriber is None:
        return await ENROLLMENT.begin(ctx, invitation=found)
    return await _join_by_invitation(ctx, ctx.subscriber, found)


async def _join_by_invitation(ctx: Context, subscriber: Subscriber,
                              invitation: Invitation) -> Effects:
    """Someone already enrolled follows a partner's link: the community (and communes)
    join their choices; they consented already, and /profil takes it back."""
    store = ctx.stores.invitations
    label = ctx.reference.communities[invitation.community].label \
        if invitation.community in ctx.reference.communities else invitation.community
    if any(row["invitation_id"] == invitation.id for row in await store.used_by(subscriber.id)):
        return ctx.answer("invite.already_used", community=label)
    if not await store.use(invitation, subscriber.id, ctx.now):
        return ctx.answer("invite.refused.exhausted", partner=invitation.partner)
    profile = await ctx.stores.subscribers.profile(subscriber)
    await store.add_community(subscriber.id, invitation.community)
    if invitation.communes:
        merged = sorted({*profile.communes, *invitation.communes})[:COMMUNES_PER_SUBSCRIBER]
        await ctx.stores.subscribers.set_communes(subscriber, merged, ctx.now)
    await ctx.audit("invitation.used", invitation=invitation.id)
    return ctx.answer("invite.joined", community=label, partner=invitation.partner)


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
    # A vetted community is kept if held already; otherwise it takes a request (/rejoindre).
    vetted = [k for k in keys if ctx.reference.communities[k].vetted
              and k not in current.communities]
    keys = [k for k in keys if k not in vetted]
    hint = ctx.answer("invite.vetted_hint", communities=_labels(ctx, vetted),
                      word=vetted[0]) if vetted else NO_EFFECTS
    if not keys:
        return hint
    await ctx.stores.subscribers.set_communities(subscriber, keys, ctx.now)
    return ctx.answer("subscriber.profile_updated",
                      summary=summary_text(ctx, keys, current.communes)) + hint


def _labels(ctx: Context, keys: list[str]) -> str:
    return ", ".join(ctx.reference.communities[k].label for k in keys)


async def join_request(ctx: Context, args: str) -> Effects:
    """``/rejoindre <communauté> : <qui vous êtes>``: a request to join a vetted community,
    for one of its référents to accept or decline; nothing of it is delivered until then."""
    subscriber = require_subscriber(ctx)
    if isinstance(subscriber, Effects):
        return subscriber
    typed, _, words = args.partition(":")
    community = ctx.reference.community(typed.strip()) if typed.strip() else None
    if community is None:
        return ctx.answer("invite.join_usage")
    current = (await ctx.stores.subscribers.profile(subscriber)).communities
    if community.key in current:
        return ctx.answer("invite.join_already", community=community.label)
    if not community.vetted:
        await ctx.stores.subscribers.set_communities(subscriber, [*current, community.key],
                                                     ctx.now)
        return ctx.answer("invite.join_open", community=community.label)
    return await file_request(ctx, subscriber, [community.key], words)


async def file_request(ctx: Context, subscriber: Subscriber, keys: list[str],
                       words: str) -> Effects:
    """Requests for these vetted communities, with the person's own words."""
    words = " ".join(words.split())
    if not words or len(words) > PRESENTATION_CHARS:
        return ctx.answer("invite.presentation_needed", max=PRESENTATION_CHARS,
                          word=keys[0])
    numbers = []
    told = NO_EFFECTS
    for key in keys:
        number = await ctx.stores.invitations.request(subscriber.id, key, words, ctx.now,
                                                      ctx.now + REQUEST_KEPT)
        await ctx.audit("community_request.filed", request=number, community=key)
        numbers.append(f"n°{number}")
        told += _tell_referents(ctx, key, number, words)
    return told + ctx.answer("invite.request_filed", numbers=", ".join(numbers),
                             communities=_labels(ctx, keys), days=REQUEST_KEPT.days)


def _tell_referents(ctx: Context, community: str, number: int, words: str) -> Effects:
    """A new request reaches the community's référents where the bot can write to them
    first: on Telegram a person's private chat is their user id (they started the bot to
    become référent). Elsewhere (Matrix: no private room is known) they see it in /demandes.
    Only the request number, the community and the person's own words: never who."""
    staff = staff_translator(ctx)
    text = staff("invite.request_for_referent", number=number,
                 community=ctx.reference.communities[community].label, words=words)
    told = NO_EFFECTS
    for identity in ctx.role_book.referents_of(community):
        platform, _, user = identity.partition(":")
        if platform == "telegram":
            told += Effects.of(Notify(ChatRef(platform, user), Outgoing(text)))
    return told


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
    Command("rejoindre", join_request, Action.SUBSCRIBE, "help.rejoindre"),
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
