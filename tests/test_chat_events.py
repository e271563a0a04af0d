"""Platform events about chats: blocked/unblocked, moved, unreadable content; menus."""

from __future__ import annotations

from bot.domain import ChatKind, ChatRef, Identity, Incoming
from tests.harness import TestBot


def event(who: str, chat: str, kind: ChatKind, **fields: object) -> Incoming:
    identity = Identity.parse(who)
    return Incoming(sender=identity, chat=ChatRef(identity.platform, chat), chat_kind=kind,
                    **fields)  # type: ignore[arg-type]


async def test_blocking_and_unblocking_the_bot(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    stores = bot.core.services.stores
    assert await bot.send(event("telegram:1", "1", ChatKind.PRIVATE, membership="left")) == []
    subscriber = await stores.subscribers.get("telegram", "1")
    assert subscriber is not None and subscriber.status == "blocked"
    await bot.send(event("telegram:1", "1", ChatKind.PRIVATE, membership="joined"))
    subscriber = await stores.subscribers.get("telegram", "1")
    assert subscriber is not None and subscriber.status == "active"


async def test_group_removal_and_migration(bot: TestBot) -> None:
    await bot.say("telegram:900", "/groupe Vesoul", chat="-5")
    stores = bot.core.services.stores
    await bot.send(event("telegram:900", "-5", ChatKind.GROUP, moved_to="-1005"))
    assert await stores.groups.get("telegram", "-5") is None
    await bot.send(event("telegram:900", "-1005", ChatKind.GROUP, membership="left"))
    group = await stores.groups.get("telegram", "-1005")
    assert group is not None and group.status == "blocked"


async def test_unreadable_content(bot: TestBot) -> None:
    reply = await bot.send(event("matrix:@a:test", "!dm", ChatKind.PRIVATE,
                                 unsupported="encrypted"))
    assert "chiffrés" in reply[0].text
    reply = await bot.send(event("telegram:1", "1", ChatKind.PRIVATE, unsupported="sticker"))
    assert "que du texte" in reply[0].text


async def test_command_menus_follow_roles(bot: TestBot) -> None:
    menus = {menu.audience: dict(menu.commands) for menu in bot.core.core.command_menus()}
    assert "start" in menus["everyone"] and "alerte" not in menus["everyone"]
    assert "valider" in menus["officers"] and "start" not in menus["officers"]
    assert "alerte" in menus["telegram:100"] and "valider" in menus["telegram:100"]
    assert "groupe" not in menus["telegram:900"]  # group commands are not for private chats
    assert menus["everyone"]["communes"].startswith("voir ou changer")


async def test_transport_state_survives_restart(bot: TestBot) -> None:
    from bot.storage.transport_state import TransportState

    state = TransportState(bot.core.services.db, "matrix")
    assert await state.get("next_batch") is None
    await state.set("next_batch", "s1")
    await state.set("next_batch", "s2")
    await bot.restart()
    assert await TransportState(bot.core.services.db, "matrix").get("next_batch") == "s2"
    assert await TransportState(bot.core.services.db, "telegram").get("next_batch") is None
