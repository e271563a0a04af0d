"""TelegramTransport on its own, against the Bot API double: errors, limits, rendering, updates."""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from telegram import Chat, Message, Update, User
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.config import ConfigError, TelegramConfig
from bot.domain import ChatKind, Choice, Incoming, Outgoing, Tone
from bot.transports.base import (
    ChatMoved,
    PermanentError,
    RateLimited,
    RecipientGone,
    TransientError,
)
from bot.transports.telegram import TelegramTransport, bot_commands
from bot.transports.telegram_errors import SWEEP_ABOVE, RecentSends, translate
from bot.transports.telegram_render import keyboard, split_text, visible_length
from bot.transports.telegram_updates import to_incoming
from tests.telegram_double import RateLimits, TelegramDouble

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:unit-token"
BOT_NAME = "alerte_test_bot"
ALICE, BOB = 1, 2
GROUP, OFFICERS = -10, -20  # basic groups: both can be upgraded
LOOSE = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)


class Received:
    """The transport's ``on_incoming``: keeps what came, can be told to fail."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[Incoming] = asyncio.Queue()
        self.fail = False

    async def __call__(self, incoming: Incoming) -> None:
        await self.items.put(incoming)
        if self.fail:
            raise RuntimeError("the core broke")

    async def next(self) -> Incoming:
        return await asyncio.wait_for(self.items.get(), 5)


def config(double: TelegramDouble, **changes: object) -> TelegramConfig:
    values: dict[str, object] = {
        "enabled": True, "token": TOKEN, "base_url": double.base_url,
        "base_file_url": double.base_file_url, "officers_chat_id": OFFICERS, "poll_timeout": 1}
    values.update(changes)
    return TelegramConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(TOKEN, BOT_NAME, limits=LOOSE) as running:
        running.user(ALICE, "Alice")
        running.user(BOB, "Bob")
        running.group(GROUP, "Mairie", members=[ALICE, BOB])
        running.group(OFFICERS, "Officiers", members=[ALICE])
        yield running


@pytest.fixture
async def received() -> Received:
    return Received()


@pytest.fixture
async def transport(double: TelegramDouble, received: Received) -> AsyncIterator[TelegramTransport]:
    started = TelegramTransport(config(double))
    await started.start(received)
    yield started
    await started.stop()


# -- sending ------------------------------------------------------------------------------


async def test_send_maps_tone_html_keyboard_and_reply(transport: TelegramTransport,
                                                      double: TelegramDouble) -> None:
    choices = (Choice("Oui", "c:1:yes"), Choice("Non", "c:1:no"),
               Choice("Une option au libellé assez long", "c:1:long"))
    first = await transport.send("1", Outgoing("Alerte", "<b>Alerte</b>", choices,
                                               Tone.PROTECTED))
    reply = await transport.send("1", Outgoing("Calme", tone=Tone.QUIET, reply_to=first))
    record, quiet = double.messages(ALICE)
    assert (record["text"], record["parse_mode"], record["protect_content"]) == (
        "Alerte", "HTML", True)
    rows = record["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [
        ["Oui", "Non"], ["Une option au libellé assez long"]]
    assert quiet["message_id"] == int(reply) and quiet["parse_mode"] is None
    assert quiet["disable_notification"] is True and quiet["reply_to_message_id"] == int(first)


async def test_platform_refusals_become_typed_errors(transport: TelegramTransport,
                                                     double: TelegramDouble) -> None:
    double.block(BOB)
    with pytest.raises(RecipientGone, match="blocked"):
        await transport.send("2", Outgoing("x"))
    double.migrate(GROUP, -1000010, by_user_id=ALICE)
    with pytest.raises(ChatMoved) as moved:
        await transport.send(str(GROUP), Outgoing("x"))
    assert moved.value.new_chat_id == "-1000010"
    with pytest.raises(PermanentError, match=r"(?i)unsupported start tag"):
        await transport.send("1", Outgoing("x", "<x>broken</x>"))
    double.fail_next(1, 502)
    with pytest.raises(TransientError, match="Bad Gateway"):
        await transport.send("1", Outgoing("x"))
    assert transport.counters == {"recipient_gone": 1, "chat_moved": 1, "permanent": 1,
                                  "transient": 1}


# Built inside the test: PTB's RetryAfter warns when constructed, outside pytestmark's filter.
@pytest.mark.parametrize(("make", "expected"), [
    (lambda: RetryAfter(3), RateLimited),
    (lambda: RetryAfter(dtm.timedelta(seconds=2)), RateLimited),
    (lambda: Forbidden("Forbidden: user is deactivated"), RecipientGone),
    (lambda: ChatMigrated(-100123), ChatMoved),
    (lambda: BadRequest("Chat not found"), PermanentError),
    (lambda: TimedOut(), TransientError), (lambda: NetworkError("Bad Gateway"), TransientError),
    (lambda: Conflict("terminated by other getUpdates"), TransientError),
    (lambda: InvalidToken(), PermanentError),
])
def test_every_ptb_error_has_a_typed_counterpart(make: Callable[[], TelegramError],
                                                 expected: type) -> None:
    typed = translate(make(), "1", RecentSends(), Counter())
    assert isinstance(typed, expected)
    if isinstance(typed, RateLimited):
        assert typed.retry_after in (2.0, 3.0) and typed.chat_only is False


async def test_flood_limits_are_told_apart(double: TelegramDouble,
                                           transport: TelegramTransport) -> None:
    double.configure_limits(private_burst=1, group_burst=20, jitter_allowance=0)
    await transport.send("1", Outgoing("un"))
    with pytest.raises(RateLimited) as private:  # we just wrote to Alice: her own limit
        await transport.send("1", Outgoing("deux"))
    assert private.value.chat_only and private.value.retry_after == 1.0
    double.inject_rate_limits(2, retry_after=4)
    with pytest.raises(RateLimited) as fresh:  # nothing sent to Bob lately: the bot's limit
        await transport.send("2", Outgoing("un"))
    assert not fresh.value.chat_only and fresh.value.retry_after == 4.0
    for n in range(20):
        await transport.send(str(GROUP), Outgoing(f"n°{n}"))
    with pytest.raises(RateLimited) as group:  # 20 in a minute: the group's limit
        await transport.send(str(GROUP), Outgoing("21"))
    assert group.value.chat_only


def test_recent_sends_heuristic_with_a_clock() -> None:
    now = [100.0]
    recent = RecentSends(lambda: now[0])
    recent.record("1")
    assert recent.chat_only("1")
    now[0] += 1.5
    assert not recent.chat_only("1")
    for _ in range(19):
        recent.record("-5")
    assert not recent.chat_only("-5")
    recent.record("-5")
    assert recent.chat_only("-5")
    now[0] += 61
    assert not recent.chat_only("-5") and not recent.chat_only("-6")


def test_recent_sends_forget_quiet_chats_in_amortised_sweeps() -> None:
    now = [0.0]
    recent = RecentSends(lambda: now[0])
    for chat in range(SWEEP_ABOVE - 1):  # a broadcast at 1,000 msg/s: each chat once
        recent.record(str(chat))
        now[0] += 0.001
    recent.record("-7")  # a group, sent to just now; 10,000 chats remembered
    now[0] += 2.0
    recent.record("new")  # triggers the sweep: private chats older than 1 s are forgotten
    assert len(recent) == 2 and recent.chat_only("new") and not recent.chat_only("0")
    for chat in range(SWEEP_ABOVE, 2 * SWEEP_ABOVE - 2):  # no sweep before 10,000 again
        recent.record(str(chat))
    assert len(recent) == SWEEP_ABOVE
    now[0] += 61
    recent.record("x")  # the group's minute is over too
    assert len(recent) == 1 and not recent.chat_only("-7")


def test_recent_sends_forget_a_wave_of_people_within_minutes() -> None:
    """Far below 10,000 chats, a wave of enrollments is still forgotten a minute later."""
    now = [0.0]
    recent = RecentSends(lambda: now[0])
    for chat in range(1, 2_001):
        recent.record(str(chat))
    now[0] += 61.0
    recent.record("-7")  # the next new chat after the minute sweeps the quiet ones
    assert len(recent) == 1 and not recent.chat_only("1")


def test_recent_sends_costs_little_memory_per_person() -> None:
    """2,000 people enrolling: their private chats' last sends stay well under 1 MB (a
    deque per chat took ~1.5 MB, most of the bot's growth per 2,000 new people)."""
    recent = RecentSends(lambda: 0.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for chat in range(1_000_000, 1_002_000):
            recent.record(str(chat))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(recent) == 2_000
    assert grown < 400_000, f"{grown:,} bytes for 2,000 private chats"


# -- long texts, edits, recalls ------------------------------------------------------------


def test_split_text_prefers_paragraphs_then_lines_then_words() -> None:
    text = "\n\n".join(["a" * 3000, "b" * 3000, "c" * 100])
    assert [len(chunk) for chunk in split_text(text)] == [3000, 3102]
    assert split_text("word " * 2000, 4096)[0].endswith("word")
    assert [len(chunk) for chunk in split_text("x" * 9000)] == [4096, 4096, 808]
    assert split_text("  court  ") == ["court"]
    assert visible_length("<b>a &amp; b</b>\n<i>c</i>") == len("a & b\nc")


def test_keyboard_layout() -> None:
    markup = keyboard((Choice("A", "a"), Choice("B", "b"), Choice("C", "c"),
                       Choice("Un libellé bien trop long pour deux", "d"), Choice("E", "e")))
    assert markup is not None
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [
        ["A", "B"], ["C"], ["Un libellé bien trop long pour deux"], ["E"]]
    assert keyboard(()) is None


async def test_long_message_edits_and_recall(transport: TelegramTransport,
                                             double: TelegramDouble) -> None:
    text = "\n\n".join(f"Paragraphe {n} " + "x" * 900 for n in range(6))
    message_id = await transport.send("1", Outgoing(text, "<b>too</b> long " + text,
                                                    (Choice("Ok", "c:1:ok"),)))
    first, second = double.messages(ALICE)
    assert message_id == f"{first['message_id']} {second['message_id']}"  # every part
    assert first["reply_markup"] is not None
    assert first["parse_mode"] is None and second["reply_markup"] is None
    await transport.edit("1", message_id, Outgoing(text + " (fin)"))
    assert first["reply_markup"] is None and second["text"].endswith("(fin)")
    await transport.edit("1", message_id, Outgoing(text + " (fin)"))  # not modified: fine
    await transport.edit("1", message_id, Outgoing("Court"))  # the second part goes away
    assert first["text"] == "Court" and second["deleted"] is True
    await transport.edit("1", message_id, Outgoing(text))  # the deleted part is skipped
    await transport.delete("1", message_id)
    await transport.delete("1", message_id)  # already gone: the recall is achieved
    assert first["deleted"] is True


async def test_after_a_restart_an_edit_reaches_every_part(double: TelegramDouble,
                                                          received: Received) -> None:
    text = "\n\n".join("y" * 3000 for _ in range(2))
    first_life = TelegramTransport(config(double))
    await first_life.start(received)
    message_id = await first_life.send("1", Outgoing(text, choices=(Choice("Ok", "c:1"),)))
    await first_life.stop()
    second_life = TelegramTransport(config(double))
    await second_life.start(received)
    try:
        await second_life.edit("1", message_id, Outgoing(text + "\n\nfin"))
    finally:
        await second_life.stop()
    first, second = double.messages(ALICE)  # the message id names both parts
    assert first["reply_markup"] is None and second["text"].endswith("fin")
    assert not first["text"].endswith("…")


# -- receiving ------------------------------------------------------------------------------


async def test_button_is_answered_even_when_the_core_fails(
        transport: TelegramTransport, double: TelegramDouble, received: Received) -> None:
    message_id = await transport.send("1", Outgoing("?", choices=(Choice("Oui", "c:1:y"),)))
    received.fail = True
    query = await double.press(ALICE, ALICE, int(message_id), "c:1:y")
    assert (await received.next()).choice == "c:1:y"
    received.fail = False
    await double.send_text(ALICE, "encore là ?")  # polling survived the failure
    assert (await received.next()).text == "encore là ?"
    assert [a["callback_query_id"] for a in double.callback_answers] == [query]


async def test_an_update_is_confirmed_only_once_handled(transport: TelegramTransport,
                                                       double: TelegramDouble) -> None:
    handled, release = asyncio.Queue[Incoming](), asyncio.Event()

    async def slow_core(incoming: Incoming) -> None:
        await handled.put(incoming)
        await release.wait()

    transport._on_incoming = slow_core
    double.fail_next(2, methods=["getUpdates"])  # the loop outlives failing polls
    await double.send_text(ALICE, "bonjour")
    incoming = await asyncio.wait_for(handled.get(), 10)
    pending = double.world.updates.pending
    assert [str(update["update_id"]) for update in pending] == [incoming.event_id]
    release.set()  # handled: the next getUpdates confirms it
    for _ in range(100):
        if not double.world.updates.pending:
            break
        await asyncio.sleep(0.02)
    assert double.world.updates.pending == [] and transport.connected


async def test_updates_become_incoming(transport: TelegramTransport, double: TelegramDouble,
                                       received: Received) -> None:
    await double.send_text(ALICE, f"/aide@{BOT_NAME}", GROUP)
    group = await received.next()
    assert (group.chat_kind, group.chat.chat_id, group.chat_title, group.sender_name) == (
        ChatKind.GROUP, str(GROUP), "Mairie", "Alice")  # the name staff are shown by
    await double.send_text(ALICE, "bavardage", OFFICERS)
    assert (await received.next()).chat_kind is ChatKind.OFFICERS
    await double.send_voice(ALICE)
    assert (await received.next()).unsupported == "voice"
    double.remove_bot(GROUP, BOB)
    removed = await received.next()
    assert (removed.membership, removed.sender.user_id) == ("left", str(BOB))


async def test_officers_group_upgrade_is_followed(transport: TelegramTransport,
                                                  double: TelegramDouble,
                                                  received: Received) -> None:
    double.migrate(OFFICERS, -1000020, by_user_id=ALICE)
    moved = await received.next()
    assert moved.moved_to == "-1000020" and moved.chat.chat_id == str(OFFICERS)
    assert [c.chat_id for c in transport.officers_channels()] == ["-1000020"]


async def test_officers_group_upgrade_met_while_sending_is_followed(
        double: TelegramDouble, received: Received) -> None:
    double.migrate(OFFICERS, -1000020, by_user_id=ALICE)
    double.world.updates.clear()  # the bot was down when it happened
    transport = TelegramTransport(config(double))
    await transport.start(received)
    try:
        with pytest.raises(ChatMoved):
            await transport.send(str(OFFICERS), Outgoing("Demande n°1"))
        [officers] = transport.officers_channels()
        await transport.send(officers.chat_id, Outgoing("Demande n°2"))
    finally:
        await transport.stop()
    assert [r["text"] for r in double.messages(-1000020)] == ["Demande n°2"]


def test_messages_nobody_can_answer_for_are_ignored() -> None:
    now = dtm.datetime.now(dtm.UTC)
    group = Chat(-100, Chat.SUPERGROUP, title="G")
    anonymous = Message(1, now, group, from_user=User(1087968824, "Group", True),
                        sender_chat=group, text="/groupe Vesoul")
    channel = Message(2, now, Chat(-200, Chat.CHANNEL), from_user=User(1, "A", False), text="/x")
    for message in (anonymous, channel):
        assert to_incoming(Update(1, message=message), BOT_NAME, None) is None
    edited = Update(2, edited_message=Message(3, now, Chat(1, Chat.PRIVATE),
                                              from_user=User(1, "A", False), text="/start"))
    assert to_incoming(edited, BOT_NAME, None) is None


def test_command_menu_is_made_acceptable() -> None:
    commands = bot_commands([("Aide", "  liste   des commandes "), ("é-t-é", "x"),
                             ("pause", ""), ("aide", "doublon"), ("long", "d" * 300)])
    assert [(c.command, c.description) for c in commands] == [
        ("aide", "liste des commandes"), ("pause", "pause"), ("long", "d" * 256)]
    assert len(bot_commands([(f"c{n}", "x") for n in range(150)])) == 100


# -- start-up ------------------------------------------------------------------------------


async def test_wrong_token_is_a_clear_startup_error(double: TelegramDouble) -> None:
    with pytest.raises(ConfigError, match="refused the bot token"):
        await TelegramTransport(config(double, token="123456:wrong")).start(Received())
    with pytest.raises(ConfigError, match=r"telegram\.token"):
        await TelegramTransport(config(double, token="")).start(Received())


async def test_unreachable_api_is_a_clear_startup_error(double: TelegramDouble) -> None:
    unreachable = config(double, base_url="http://127.0.0.1:9/bot")
    with pytest.raises(ConfigError, match="cannot reach the Bot API"):
        await TelegramTransport(unreachable).start(Received())


async def test_webhook_mode_needs_no_extra_and_stops_listening_at_stop(
        double: TelegramDouble, received: Received) -> None:
    with socket.socket() as probe:  # a free port: bound to 0, read, released
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    hooked = TelegramTransport(config(double, mode="webhook", webhook_port=port,
                                      webhook_url=f"http://127.0.0.1:{port}/tg",
                                      webhook_secret="s3cret"))
    await hooked.start(received)
    try:
        await double.send_text(ALICE, "/aide")
        assert (await received.next()).text == "/aide"
    finally:
        await hooked.stop()
    assert double.webhook is not None  # kept: Telegram queues updates until the bot is back
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
