"""Admin commands: register a group chat as an alert target."""

from __future__ import annotations

from bot.alerts import FOR, AlertInputError, parse_communities, require_perimeter
from bot.commands import Command
from bot.context import Context
from bot.geo.perimeter import PerimeterError
from bot.roles import Action


async def register_group(ctx: Context, args: str) -> None:
    if not args.strip():
        ctx.say("group.usage")
        return
    head, communities = args, ""
    target = FOR.search(args)
    if target:
        head, communities = args[:target.start()], target.group(1)
    try:
        perimeter = require_perimeter(ctx.services, head)
        keys = _communities(ctx, communities)
    except (PerimeterError, AlertInputError) as error:
        ctx.reply(ctx.t(error.key, **error.params) + "\n" + ctx.t("group.usage"))
        return
    chat = ctx.incoming.chat
    await ctx.stores.groups.register(chat.platform, chat.chat_id, ctx.incoming.chat_title,
                                     perimeter.text, sorted(perimeter.communes), keys, ctx.who,
                                     ctx.now)
    await ctx.audit("group.registered", chat=str(chat), perimeter=perimeter.text,
                    communities=keys)
    labels = ", ".join(ctx.services.reference.communities[k].label for k in keys)
    ctx.say("group.registered", perimeter=perimeter.text, count=len(perimeter.communes),
            communities=labels or ctx.t("render.everyone"))


def _communities(ctx: Context, text: str) -> list[str]:
    keys, everyone = parse_communities(ctx.services, text)
    return [] if everyone else sorted(keys)


async def unregister_group(ctx: Context, args: str) -> None:
    chat = ctx.incoming.chat
    group = await ctx.stores.groups.get(chat.platform, chat.chat_id)
    if ctx.is_private or group is None:
        ctx.say("group.not_registered")
        return
    await ctx.stores.groups.unregister(group)
    await ctx.audit("group.unregistered", chat=str(chat))
    ctx.say("group.unregistered")


COMMANDS = [
    Command("groupe", register_group, Action.REGISTER_GROUP, "help.groupe", in_groups=True,
            in_private=False),
    Command("degroupe", unregister_group, Action.REGISTER_GROUP, "help.degroupe",
            in_groups=True, in_private=False),
]
