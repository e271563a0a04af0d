"""Référents and admins: invitation links and posters, and requests to join a vetted
community (issue 17).

A référent (a chamber's or an association's staff) works for the communities they are
bound to; an admin for all. Partners see how many people an invitation brought, never
who; a référent reads a request's number and the words its author chose, never their
platform id.
"""

from __future__ import annotations

from datetime import date, timedelta

from bot.commands import Command, small_number
from bot.context import Context, Services
from bot.conversations.places import resolve_places
from bot.deferred import poster_recipe, qr_recipe
from bot.domain import NO_EFFECTS, ChatRef, Effects, Notify, Outgoing
from bot.i18n import Translator
from bot.invitation_poster import PosterText
from bot.invitations import (
    InvitationSyntax,
    end_of,
    new_token,
    parse_invitation,
    token_hash,
)
from bot.reference import Community, fold
from bot.roles import Action, Role
from bot.storage.invitations import CommunityRequest, Invitation, InvitationCounts
from bot.transports.base import StartLink

REVOKE_WORDS = frozenset({"revoquer", "revoque", "revocation", "revoke"})


def handled_by(ctx: Context) -> frozenset[str] | None:
    """The communities the caller works for; None: all of them (an admin)."""
    if Role.ADMIN in ctx.roles:
        return None
    return ctx.role_book.referent_communities(ctx.identity)


def _handles(ctx: Context, community: str) -> bool:
    mine = handled_by(ctx)
    return mine is None or community in mine


def _label(ctx: Context, key: str) -> str:
    community = ctx.reference.communities.get(key)
    return community.label if community else key


def _mine_listed(ctx: Context) -> str:
    mine = handled_by(ctx)
    keys = ctx.reference.communities if mine is None else sorted(mine)
    return ", ".join(keys) or "—"


# -- /invitation ------------------------------------------------------------------------


async def invitation(ctx: Context, args: str) -> Effects:
    """``/invitation <communauté> [communes] [jusqu'au JJ/MM] [max N] [: partenaire]``, or
    ``/invitation revoquer N``."""
    first, _, rest = args.strip().partition(" ")
    if fold(first) in REVOKE_WORDS:
        return await revoke(ctx, rest)
    if not args.strip():
        return ctx.answer("invite.usage")
    try:
        wanted = parse_invitation(args, ctx.local(ctx.now).date())
    except InvitationSyntax as error:
        return ctx.text(ctx.t(error.key, **error.params) + "\n" + ctx.t("invite.usage"))
    community = ctx.reference.community(wanted.community)
    if community is None:
        return ctx.answer("invite.unknown_community", typed=wanted.community[:40],
                          known=_mine_listed(ctx))
    if not _handles(ctx, community.key):
        await ctx.audit("invitation.refused_community", community=community.key)
        return ctx.answer("invite.not_yours", community=community.label,
                          known=_mine_listed(ctx))
    if wanted.partner and Role.ADMIN not in ctx.roles:
        return ctx.answer("invite.partner_fixed", partner=_partner(ctx, None))
    communes: list[str] = []
    if wanted.places:
        resolution = resolve_places(ctx.geo, ctx.t, wanted.places)
        if resolution.problems or resolution.questions:
            doubts = [q.text(ctx.t) for q in resolution.questions]
            return ctx.text("\n".join([*resolution.problems, *doubts,
                                       ctx.t("invite.places_unclear")]))
        communes = sorted({c.insee for c in resolution.found})
    return await _create(ctx, community, communes, wanted.until, wanted.max_uses,
                         _partner(ctx, wanted.partner))


def _partner(ctx: Context, named: str | None) -> str:
    """A référent's partner is theirs; an admin may name one, else the bot's signature."""
    return (named or ctx.role_book.partner_of(ctx.identity) or ctx.config.signature)[:64]


async def _create(ctx: Context, community: Community, communes: list[str],
                  until: date | None, max_uses: int | None, partner: str) -> Effects:
    token = new_token()
    links = ctx.services.start_links(token)
    if not links:
        return ctx.answer("invite.no_platform")
    expires = None if until is None else end_of(until, ctx.timezone)
    number = await ctx.stores.invitations.create(
        token_hash(token), community.key, communes, partner, ctx.who, ctx.now, expires,
        max_uses)
    await ctx.audit("invitation.created", invitation=number, community=community.key,
                    communes=communes, partner=partner,
                    until=None if expires is None else expires.isoformat(), max_uses=max_uses)
    conditions = _conditions(ctx, communes, until, max_uses)
    lines = [ctx.t("invite.created", number=number, community=community.label,
                   partner=partner), *conditions, ""]
    lines += [_link_line(ctx.t, link) for link in links]
    lines += ["", ctx.t("invite.keep_it", number=number)]
    on_qr = _qr_link(links)
    best = on_qr.url or on_qr.send or ""
    matrix = next((link for link in links if link.send and link.url), None)
    poster = PosterText(
        issuer=ctx.config.signature, partner=partner, community=community.label,
        link=best, footer=ctx.t("invite.poster_footer", number=number,
                                conditions=" · ".join(conditions) or "—"),
        # Always the line to send on Matrix: its link cannot carry the code, even on the QR.
        matrix_line="" if matrix is None else ctx.t(
            "invite.poster_matrix", url=matrix.url, send=matrix.send),
        platform=on_qr.platform)
    language = ctx.t.language
    return (ctx.text("\n".join(lines))
            + ctx.message(Outgoing(ctx.t("invite.qr_caption", number=number),
                                   deferred=qr_recipe(number, language, best)))
            + ctx.message(Outgoing(ctx.t("invite.poster_caption", number=number),
                                   deferred=poster_recipe(number, language, poster))))


def _conditions(ctx: Context, communes: list[str], until: date | None,
                max_uses: int | None) -> list[str]:
    lines = []
    if communes:
        names = [c.label() for c in filter(None, map(ctx.geo.by_insee, communes))]
        lines.append(ctx.t("invite.communes", list=", ".join(names)))
    if until is not None:
        lines.append(ctx.t("invite.until", date=until.strftime("%d/%m/%Y")))
    if max_uses is not None:
        lines.append(ctx.t("invite.max", count=max_uses))
    return lines


def _link_line(t: Translator, link: StartLink) -> str:
    if link.url and link.send:
        return t("invite.link_then_send", name=link.platform.capitalize(), url=link.url,
                 send=link.send)
    if link.url:
        return t("invite.link", name=link.platform.capitalize(), url=link.url)
    return t("invite.send", name=link.platform.capitalize(), send=link.send or "")


def _qr_link(links: list[StartLink]) -> StartLink:
    """What the QR code opens: a link that carries the code itself (Telegram's, WhatsApp's
    wa.me) first, then any link, then the line to send."""
    for link in links:
        if link.url and not link.send:
            return link
    for link in links:
        if link.url:
            return link
    return links[0]


async def revoke(ctx: Context, args: str) -> Effects:
    number = small_number(args)
    found = None if number is None else await ctx.stores.invitations.get(number)
    if found is None or not _handles(ctx, found.community):
        return ctx.answer("invite.no_such", number=args.strip()[:20] or "?")
    changed = await ctx.stores.invitations.revoke(found.id, ctx.who, ctx.now)
    await ctx.audit("invitation.revoked", invitation=found.id, changed=changed)
    return ctx.answer("invite.revoked_now" if changed else "invite.revoked_already",
                      number=found.id)


# -- /invitations -----------------------------------------------------------------------


async def invitations(ctx: Context, args: str) -> Effects:
    listed = await ctx.stores.invitations.counts(handled_by(ctx))
    if not listed:
        return ctx.answer("invite.none")
    lines = [ctx.t("invite.list_title")]
    lines += [_listed(ctx, counts) for counts in listed[:50]]
    return ctx.text("\n".join(lines))


def _listed(ctx: Context, counts: InvitationCounts) -> str:
    found: Invitation = counts.invitation
    # Stored as the first moment it no longer works: the last day shown is the one before.
    until = None if found.expires_at is None else ctx.local(found.expires_at - timedelta(
        seconds=1))
    conditions = _conditions(ctx, list(found.communes), None, found.max_uses)
    if until is not None:
        conditions.append(ctx.t("invite.until", date=ctx.t.day(until)))
    return ctx.t("invite.line", number=found.id, community=_label(ctx, found.community),
                 partner=found.partner, state=ctx.t(f"invite.state.{found.state(ctx.now)}"),
                 enrolled=ctx.t("quantity.enrolled", count=counts.enrolled),
                 active=ctx.t("quantity.still_active", count=counts.still_active),
                 conditions=(" · " + " · ".join(conditions)) if conditions else "")


# -- requests to join a vetted community ------------------------------------------------


async def requests(ctx: Context, args: str) -> Effects:
    """``/demandes``: the pending requests of the caller's communities."""
    pending = await ctx.stores.invitations.pending(handled_by(ctx))
    if not pending:
        return ctx.answer("invite.no_requests")
    lines = [ctx.t("invite.requests_title")]
    for request in pending[:50]:
        lines.append(ctx.t("invite.request_line", number=request.id,
                           community=_label(ctx, request.community),
                           received=ctx.t.day(ctx.local(request.created_at)),
                           expires=ctx.t.day(ctx.local(request.expires_at)),
                           words=request.presentation))
    lines.append(ctx.t("invite.requests_hint"))
    return ctx.text("\n".join(lines))


async def accept(ctx: Context, args: str) -> Effects:
    return await _decide(ctx, args, accepted=True)


async def decline(ctx: Context, args: str) -> Effects:
    return await _decide(ctx, args, accepted=False)


async def _decide(ctx: Context, args: str, accepted: bool) -> Effects:
    number = small_number(args.split()[0]) if args.split() else None
    store = ctx.stores.invitations
    request = None if number is None else await store.get_request(number)
    if request is None or not _handles(ctx, request.community):
        return ctx.answer("invite.no_such_request", number=args.strip()[:20] or "?")
    if accepted:
        await store.add_community(request.subscriber_id, request.community)
    await store.close_request(request.id)
    await ctx.audit("community_request.accepted" if accepted else "community_request.declined",
                    request=request.id, community=request.community)
    told = await _tell_requester(ctx.services, request,
                                 "invite.request_accepted" if accepted
                                 else "invite.request_declined")
    return ctx.answer("invite.decided_accepted" if accepted else "invite.decided_declined",
                      number=request.id, community=_label(ctx, request.community)) + told


async def _tell_requester(services: Services, request: CommunityRequest, key: str) -> Effects:
    row = await services.db.fetchone(
        "SELECT platform, chat_id, language, status FROM subscribers WHERE id = ?",
        (request.subscriber_id,))
    if row is None or row["status"] == "blocked":
        return NO_EFFECTS
    t = Translator(services.catalog, row["language"], row["platform"])
    community = services.reference.communities.get(request.community)
    label = community.label if community else request.community
    return Effects.of(Notify(ChatRef(row["platform"], row["chat_id"]),
                             Outgoing(t(key, number=request.id, community=label))))


async def expire_request(services: Services, request: CommunityRequest) -> Effects:
    """One request nobody decided in time: closed (once) and audited; the notice to its
    author is returned, for the caller to write in the same transaction (closed once,
    told at least once)."""
    if not await services.stores.invitations.close_request(request.id):
        return NO_EFFECTS  # decided meanwhile
    await services.stores.audit.record(services.clock.now(), "system",
                                       "community_request.expired", None,
                                       request=request.id, community=request.community)
    return await _tell_requester(services, request, "invite.request_expired")


COMMANDS = [
    Command("invitation", invitation, Action.INVITE, "help.invitation"),
    Command("invitations", invitations, Action.INVITE, "help.invitations"),
    Command("demandes", requests, Action.VET, "help.demandes"),
    Command("accepter", accept, Action.VET, "help.accepter"),
    Command("decliner", decline, Action.VET, "help.decliner"),
]
