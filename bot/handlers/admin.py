"""Admin commands: register a group chat as an alert target."""

from __future__ import annotations

from bot.alert_approval import parse_communities, require_perimeter, shown_perimeter, split_for
from bot.commands import Command
from bot.context import Context
from bot.domain import Effects, is_platform_id
from bot.errors import UserFacingError
from bot.limits import STAFF_NAME_CHARS
from bot.people import forget_names
from bot.roles import GRANTABLE, Action


async def register_group(ctx: Context, args: str) -> Effects:
    if not args.strip():
        return ctx.answer("group.usage")
    head, communities = split_for(args)
    try:
        perimeter = require_perimeter(ctx, head)
        keys = _communities(ctx, communities or "")
    except UserFacingError as error:
        return ctx.text(ctx.t(error.key, **error.params) + "\n" + ctx.t("group.usage"))
    chat, shown = ctx.incoming.chat, shown_perimeter(ctx, perimeter, counted=False)
    await ctx.stores.groups.register(chat.platform, chat.chat_id, ctx.incoming.chat_title,
                                     shown, sorted(perimeter.communes), keys, ctx.who, ctx.now)
    await ctx.audit("group.registered", chat=str(chat), perimeter=perimeter.text,
                    communities=keys)
    labels = ", ".join(ctx.reference.communities[k].label for k in keys)
    return ctx.answer("group.registered", perimeter=shown,
                      communes=ctx.t("quantity.communes", count=len(perimeter.communes)),
                      communities=labels or ctx.t("render.everyone"))


def _communities(ctx: Context, text: str) -> list[str]:
    keys, everyone = parse_communities(ctx.reference, text)
    return [] if everyone else sorted(keys)


async def unregister_group(ctx: Context, args: str) -> Effects:
    chat = ctx.incoming.chat
    group = await ctx.stores.groups.get(chat.platform, chat.chat_id)
    if ctx.is_private or group is None:
        return ctx.answer("group.not_registered")
    await ctx.stores.groups.unregister(group)
    await ctx.audit("group.unregistered", chat=str(chat))
    return ctx.answer("group.unregistered")


ROLE_WORDS = {"operateur": "operator", "opérateur": "operator", "operator": "operator",
              "officier": "officer", "officer": "officer", "admin": "admin"}


async def manage_role(ctx: Context, args: str) -> Effects:
    """``/role <PLATFORM:ID> [-]<operateur|officier|admin>`` — grant or revoke; audited.
    ``/role <PLATFORM:ID> [-]referent <communautés> [: <partenaire>]`` for référents."""
    parts = args.split()
    if len(parts) >= 2 and parts[1].lstrip("-+").lower() in REFERENT_WORDS:
        return await manage_referent(ctx, parts[0], parts[1].startswith("-"),
                                     args.split(None, 2)[2] if len(parts) > 2 else "")
    role_name = ROLE_WORDS.get(parts[1].lstrip("-+").lower()) if len(parts) == 2 else None
    if role_name is None:
        return ctx.answer("roles.usage")
    identity, revoke = parts[0], parts[1].startswith("-")
    # Revoking anything is allowed: it can only clean up a grant made before this check.
    if not revoke and not is_platform_id(identity):
        return ctx.text(ctx.t("roles.not_platform_id", identity=identity[:80]) + "\n"
                        + ctx.t("roles.usage"))
    role = GRANTABLE[role_name]
    if revoke and ctx.role_book.configured(identity, role):
        # The file this bot was started with, wherever it is (alerte-bot --config PATH).
        return ctx.answer("roles.in_config", identity=identity, section=f"{role_name}s",
                          file=ctx.config.source or ctx.t("roles.config_file"))
    return await _apply_role(ctx, identity, role_name, revoke)


async def _apply_role(ctx: Context, identity: str, role_name: str, revoke: bool) -> Effects:
    role, store = GRANTABLE[role_name], ctx.stores.roles
    if revoke:
        changed = await store.revoke(identity, role_name)
        ctx.role_book.revoke(identity, role)
        await forget_names(ctx.services)  # kept only while the person holds a role
    else:
        # The grant belongs to the granter's organisation (bot/organisations.py).
        organisation = ctx.organisations.key_of(ctx.identity)
        changed = await store.grant(identity, role_name, ctx.who, ctx.now, organisation)
        ctx.role_book.grant(identity, role)
        ctx.organisations.join(identity, organisation)
    await ctx.audit("role.revoked" if revoke else "role.granted", identity=identity,
                    role=role_name, changed=changed)
    return ctx.answer("roles.revoked" if revoke else "roles.granted", identity=identity,
                      role=ctx.t(f"roles.name.{role_name}"))


REFERENT_WORDS = frozenset({"referent", "référent"})


async def manage_referent(ctx: Context, identity: str, revoke: bool, rest: str) -> Effects:
    """A référent is bound to communities, and speaks for one partner (printed on posters)."""
    listed, _, partner = rest.partition(":")
    keys, unknown = [], []
    for word in filter(None, (w.strip() for w in listed.replace(";", ",").split(","))):
        community = ctx.reference.community(word)
        (unknown.append(word) if community is None else keys.append(community.key))
    partner = " ".join(partner.split())[:STAFF_NAME_CHARS]
    if unknown or (not revoke and (not keys or not partner)) or not is_platform_id(identity):
        return ctx.answer("roles.referent_usage")
    book, store = ctx.role_book, ctx.stores.referents
    if revoke:
        named = keys or sorted(book.referent_communities(identity))
        fixed = [k for k in named if book.configured_referent(identity, k)]
        if fixed:
            return ctx.answer("roles.referent_in_config", identity=identity,
                              communities=", ".join(fixed),
                              file=ctx.config.source or ctx.t("roles.config_file"))
        changed = await store.revoke(identity, keys or None)
        book.revoke_referent(identity, keys or None)
        await forget_names(ctx.services)
        await ctx.audit("role.revoked", identity=identity, role="referent",
                        communities=named, changed=changed)
        return ctx.answer("roles.referent_revoked", identity=identity,
                          communities=", ".join(named) or "—")
    await store.grant(identity, keys, partner, ctx.who, ctx.now)
    book.grant_referent(identity, keys, partner)
    await ctx.audit("role.granted", identity=identity, role="referent", communities=keys,
                    partner=partner)
    return ctx.answer("roles.referent_granted", identity=identity,
                      communities=", ".join(keys), partner=partner)


COMMANDS = [
    Command("groupe", register_group, Action.REGISTER_GROUP, "help.groupe", in_groups=True,
            in_private=False),
    Command("degroupe", unregister_group, Action.REGISTER_GROUP, "help.degroupe",
            in_groups=True, in_private=False),
    Command("role", manage_role, Action.MANAGE_ROLES, "help.role", in_groups=True),
]
