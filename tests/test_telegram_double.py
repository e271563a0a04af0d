"""The Telegram Bot API double, driven by python-telegram-bot's own ``telegram.Bot``.

Each test proves one behaviour the bot's end-to-end tests and benchmarks rely on: that PTB
parses what the double returns, and that PTB raises for the double's errors exactly what it
raises for Telegram's.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    ChatMemberBanned,
    ChatMemberMember,
    ChatMemberRestricted,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ZERO_DATE
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from tests.telegram_double import RateLimits, TelegramDouble, TokenBucket, parse_html
from tests.telegram_double.markup import EntityParseError
from tests.telegram_double.payloads import photo_message, ptb_json, text_message
from tests.telegram_double.simulate import TINY_PNG

TOKEN = "123:ABC"
ALICE = 1001
BOB = 1002
GROUP = -1002
BOT_NAME = "alerte_test_bot"

# PTB 22.8 warns whenever a duration attribute is read as int (RetryAfter's own __init__ does);
# the tests that care assert the warning explicitly.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

# Limits loose enough that only the tests about limits meet them.
LOOSE = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


@pytest.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(TOKEN, BOT_NAME, limits=LOOSE) as running:
        running.user(ALICE, "Alice", username="alice")
        running.user(BOB, "Bob")
        running.group(GROUP, "Mairie", members=[ALICE, BOB])
        yield running


@pytest.fixture
async def bot(double: TelegramDouble) -> AsyncIterator[Bot]:
    """PTB's own client on the double (shadows conftest's ``bot`` in this module on purpose)."""
    async with Bot(TOKEN, base_url=double.base_url, base_file_url=double.base_file_url) as ptb:
        yield ptb


async def updates_after(bot: Bot, offset: int = 0) -> tuple[Update, ...]:
    return await bot.get_updates(offset=offset, timeout=0)


# -- basics ----------------------------------------------------------------------------------


async def test_get_me_identifies_the_bot(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123, BOT_NAME, True)
    assert me.can_join_groups is True
    assert me.api_kwargs == {}  # every field is one PTB knows


async def test_send_message_round_trip(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(
        ALICE, "Alerte crue", protect_content=True, disable_notification=True
    )
    assert isinstance(sent, Message)
    assert (sent.chat.id, sent.chat.type, sent.text) == (ALICE, "private", "Alerte crue")
    assert sent.from_user is not None and sent.from_user.username == BOT_NAME
    assert sent.has_protected_content is True
    assert sent.api_kwargs == {} and sent.chat.api_kwargs == {}
    assert abs(sent.date.timestamp() - time.time()) < 5  # a real Unix date
    record = double.last_message(ALICE)
    assert record is not None
    assert record["message_id"] == sent.message_id
    assert record["protect_content"] is True and record["disable_notification"] is True
    assert record["deleted"] is False and record["edits"] == []


async def test_message_ids_increase_per_chat(bot: Bot) -> None:
    first = await bot.send_message(ALICE, "un")
    second = await bot.send_message(ALICE, "deux")
    other_chat = await bot.send_message(BOB, "un")
    assert second.message_id == first.message_id + 1
    assert other_chat.message_id == 1


async def test_hot_path_dicts_equal_ptb_to_dict(double: TelegramDouble) -> None:
    bot_user = User(123, "Alerte Test", True, username=BOT_NAME)
    chat = double.world.chat(ALICE)
    date = dtm.datetime.fromtimestamp(1_700_000_000, dtm.UTC)
    markup = keyboard("ok", "non")
    earlier = Message(1, date, chat.ptb, from_user=bot_user, text="avant")
    expected = Message(
        2,
        date,
        chat.ptb,
        from_user=bot_user,
        text="Alerte crue",
        entities=(MessageEntity("bold", 0, 6),),
        reply_markup=markup,
        has_protected_content=True,
        reply_to_message=earlier,
    )
    built = text_message(
        2,
        double.world.bot_sender,
        chat.api,
        1_700_000_000,
        "Alerte crue",
        [{"type": "bold", "offset": 0, "length": 6}],
        reply_markup=ptb_json(markup),
        protect_content=True,
        reply_to=ptb_json(earlier),
    )
    assert built == ptb_json(expected)
    assert Message.de_json(built, None).api_kwargs == {}

    photo = {"file_id": "F", "file_unique_id": "U", "file_size": 3, "width": 1, "height": 1}
    built_photo = photo_message(
        3, double.world.bot_sender, chat.api, 1_700_000_000, [photo], "légende", []
    )
    expected_photo = Message.de_json(built_photo, None)
    assert expected_photo.api_kwargs == {}
    assert built_photo == ptb_json(expected_photo)


async def test_unknown_method_and_wrong_token(double: TelegramDouble, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy")
    stranger = Bot("123:WRONG", base_url=double.base_url)
    with pytest.raises(InvalidToken):
        await stranger.get_me()
    assert double.stats.errors[401] == 1


async def test_plain_http_json_and_query_string(double: TelegramDouble) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            double.url("sendMessage"), json={"chat_id": ALICE, "text": "json"}
        ) as response:
            body = await response.json()
        assert body["ok"] is True and body["result"]["text"] == "json"
        async with session.get(
            double.url("SENDMESSAGE"), params={"chat_id": str(ALICE), "text": "query"}
        ) as response:
            assert (await response.json())["result"]["text"] == "query"
        async with session.post(double.url("nope")) as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }


# -- updates ---------------------------------------------------------------------------------


async def test_long_poll_waits_for_the_next_update(bot: Bot, double: TelegramDouble) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await double.send_text(ALICE, "bonjour")
    updates = await asyncio.wait_for(poll, 5)
    assert time.monotonic() - started < 5
    assert [u.message.text for u in updates if u.message] == ["bonjour"]


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_text_command_location_and_callback_updates(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "Confirmer ?", reply_markup=keyboard("oui", "non"))
    await double.send_text(ALICE, "/start")
    await double.send_text(ALICE, f"/alerte@{BOT_NAME} crue", chat_id=GROUP)
    await double.send_location(ALICE, 48.8566, 2.3522)
    query_id = await double.press(ALICE, ALICE, sent.message_id, "oui")

    updates = await updates_after(bot)
    ids = [u.update_id for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == 4
    start, group_command, location, press = updates

    assert start.message is not None and start.message.text == "/start"
    assert start.message.entities == (MessageEntity("bot_command", 0, 6),)
    assert group_command.effective_chat is not None and group_command.effective_chat.id == GROUP
    assert group_command.message is not None
    assert group_command.message.parse_entities(["bot_command"]) == {
        MessageEntity("bot_command", 0, len(f"/alerte@{BOT_NAME}")): f"/alerte@{BOT_NAME}"
    }
    assert location.message is not None and location.message.location is not None
    assert location.message.location.latitude == pytest.approx(48.8566)
    assert isinstance(press.callback_query, CallbackQuery)
    assert press.callback_query.id == query_id and press.callback_query.data == "oui"
    assert isinstance(press.callback_query.message, Message)
    assert press.callback_query.message.message_id == sent.message_id
    assert all(u.api_kwargs == {} for u in updates)


async def test_offset_confirms_updates(bot: Bot, double: TelegramDouble) -> None:
    await double.send_text(ALICE, "un")
    await double.send_text(ALICE, "deux")
    first, second = await updates_after(bot)
    assert [u.update_id for u in await updates_after(bot, first.update_id + 1)] == [
        second.update_id
    ]
    assert await updates_after(bot, second.update_id + 1) == ()
    assert double.pending_updates == []


async def test_allowed_updates_filters_new_updates(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "?", reply_markup=keyboard("ok"))
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    await double.send_text(ALICE, "ignored")
    await double.press(ALICE, ALICE, sent.message_id, "ok")
    updates = await updates_after(bot)
    assert [u.callback_query is not None for u in updates] == [True]
    assert double.stats.dropped_updates == 1


async def test_user_edit_and_media_updates(bot: Bot, double: TelegramDouble) -> None:
    original = await double.send_text(ALICE, "rdv 14h")
    await double.edit_text(ALICE, original["message_id"], "rdv 15h")
    await double.send_sticker(ALICE)
    await double.send_voice(ALICE, duration=4)
    await double.send_photo(ALICE, caption="inondation")
    _, edited, sticker, voice, photo = await updates_after(bot)
    assert edited.edited_message is not None
    assert edited.edited_message.text == "rdv 15h" and edited.edited_message.edit_date
    assert sticker.message is not None and sticker.message.sticker is not None
    assert voice.message is not None and voice.message.voice is not None
    assert voice.message.voice.duration in (4, dtm.timedelta(seconds=4))
    assert photo.message is not None and photo.message.caption == "inondation"
    file = await bot.get_file(photo.message.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == TINY_PNG


async def test_concurrent_long_polls_conflict(bot: Bot, double: TelegramDouble) -> None:
    # A second Bot: one Bot's getUpdates connection pool holds a single connection.
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    async with Bot(TOKEN, base_url=double.base_url) as second_instance:
        second = asyncio.create_task(second_instance.get_updates(timeout=1))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await first
        assert await second == ()


# -- HTML, lengths, keyboards ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text", "entities"),
    [
        ("<b>Crue</b> &amp; <i>pluie</i>", "Crue & pluie", [("bold", 0, 4), ("italic", 7, 5)]),
        ("<strong>a</strong><em>b</em><ins>c</ins><del>d</del>", "abcd", None),
        ('<a href="https://x.fr/a?b=1&amp;c=2">lien</a>', "lien", [("text_link", 0, 4)]),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st", None),
        ("<blockquote>q</blockquote><pre><code>x = 1</code></pre>", "qx = 1", None),
        ("🌊 <b>é</b>", "🌊 é", [("bold", 3, 1)]),  # offsets in UTF-16 units
        ("&lt;tag&gt; &quot;q&quot; &#233; &nbsp; a & b", '<tag> "q" é &nbsp; a & b', []),
        (
            "<b>gras <i>et italique</i></b>",
            "gras et italique",
            [("bold", 0, 16), ("italic", 5, 11)],
        ),
    ],
)
def test_html_accepted(markup: str, text: str, entities: list[tuple[str, int, int]] | None) -> None:
    parsed_text, parsed = parse_html(markup)
    assert parsed_text == text
    if entities is not None:
        assert [(e["type"], e["offset"], e["length"]) for e in parsed] == entities


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("<script>x</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>gras", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("é<u>x</u", "Unclosed end tag at byte offset 6"),
    ],
)
def test_html_rejected(markup: str, error: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html(markup)
    assert str(caught.value) == error


async def test_html_through_the_api(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "<b>Alerte</b> rouge", parse_mode="HTML")
    assert sent.text == "Alerte rouge"
    assert sent.parse_entities() == {MessageEntity("bold", 0, 6): "Alerte"}
    record = double.last_message(ALICE)
    assert record is not None and record["raw_text"] == "<b>Alerte</b> rouge"
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities: unsupported start tag"):
        await bot.send_message(ALICE, "<blink>x</blink>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)unsupported parse_mode"):
        await bot.send_message(ALICE, "x", parse_mode="BBCode")


async def test_text_length_counts_after_parsing(bot: Bot) -> None:
    await bot.send_message(ALICE, "a" * 4096)
    await bot.send_message(ALICE, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    await bot.send_message(ALICE, "  " + "a" * 4096 + "\n")  # trimmed like Telegram does
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(ALICE, "a" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(ALICE, " \n")


async def test_callback_data_limit_is_64_bytes(bot: Bot) -> None:
    await bot.send_message(ALICE, "ok", reply_markup=keyboard("x" * 64))
    for too_long in ("x" * 65, "é" * 33):  # 66 bytes in 33 characters
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            await bot.send_message(ALICE, "ko", reply_markup=keyboard(too_long))


async def test_reply_parameters(bot: Bot, double: TelegramDouble) -> None:
    question = await double.send_text(ALICE, "Quelle zone ?")
    answer = await bot.send_message(
        ALICE, "Nord", reply_parameters=ReplyParameters(question["message_id"])
    )
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "Quelle zone ?"
    record = double.last_message(ALICE)
    assert record is not None and record["reply_to_message_id"] == question["message_id"]
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(ALICE, "x", reply_parameters=ReplyParameters(999))
    lenient = ReplyParameters(999, allow_sending_without_reply=True)
    assert (await bot.send_message(ALICE, "x", reply_parameters=lenient)).reply_to_message is None


# -- limits ----------------------------------------------------------------------------------


async def test_private_chat_burst_then_retry_after(
    bot: Bot, double: TelegramDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    double.configure_limits(private_burst=3.0, jitter_allowance=0.0)
    for n in range(3):
        await bot.send_message(ALICE, f"burst {n}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE, "one too many")
    # PTB 22.8: an int (with a PTBDeprecationWarning) unless PTB_TIMEDELTA is set.
    with pytest.warns(PTBDeprecationWarning):
        assert caught.value.retry_after == 1
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    assert caught.value.retry_after == dtm.timedelta(seconds=1)
    await bot.send_message(BOB, "another chat is not affected")
    assert double.stats.rate_limited == {"private": 1}
    assert double.stats.accepted[ALICE] == 3


async def test_private_chat_refills_at_one_per_second(bot: Bot, double: TelegramDouble) -> None:
    double.configure_limits(private_burst=1.0)
    await bot.send_message(ALICE, "1")
    with pytest.raises(RetryAfter):
        await bot.send_message(ALICE, "2")
    await asyncio.sleep(1.0)
    await bot.send_message(ALICE, "2 again")


async def test_global_limit_across_chats(bot: Bot, double: TelegramDouble) -> None:
    double.configure_limits(global_rate=5.0, global_burst=5.0, jitter_allowance=0.0)
    for user_id in range(2001, 2006):
        double.user(user_id)
        await bot.send_message(user_id, "diffusion")
    double.user(2006)
    with pytest.raises(RetryAfter):
        await bot.send_message(2006, "diffusion")
    assert double.stats.rate_limited == {"global": 1}


async def test_paid_broadcast_raises_the_global_ceiling(bot: Bot) -> None:
    async with TelegramDouble(TOKEN, global_rate=2, paid_broadcast=True) as paid:
        for user_id in range(2001, 2011):
            paid.user(user_id)
        async with Bot(TOKEN, base_url=paid.base_url) as paid_bot:
            for user_id in range(2001, 2011):
                await paid_bot.send_message(user_id, "payant")
        assert paid.stats.paid_broadcasts == 10
    # Without the flag, allow_paid_broadcast on a request uses the paid bucket too.
    async with TelegramDouble(TOKEN, global_rate=1) as per_request:
        per_request.user(ALICE)
        per_request.user(BOB)
        async with Bot(TOKEN, base_url=per_request.base_url) as one_bot:
            await one_bot.send_message(ALICE, "gratuit")
            with pytest.raises(RetryAfter):
                await one_bot.send_message(BOB, "gratuit")
            await one_bot.send_message(BOB, "payant", allow_paid_broadcast=True)


async def test_group_limit_is_twenty_per_minute(bot: Bot, double: TelegramDouble) -> None:
    double.configure_limits(group_burst=None, jitter_allowance=0.0)
    for n in range(20):
        await bot.send_message(GROUP, f"message {n}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(GROUP, "21st")
    assert caught.value.retry_after == 3  # one token per 3 s
    assert double.stats.rate_limited == {"group": 1}


async def test_injected_rate_limit(bot: Bot, double: TelegramDouble) -> None:
    double.inject_rate_limits(ALICE, retry_after=7)
    await bot.send_message(BOB, "other chat passes")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE, "forced")
    assert caught.value.retry_after == 7
    await bot.send_message(ALICE, "only once")
    assert double.stats.rate_limited == {"injected": 1}


def test_token_bucket_refill_and_jitter_allowance() -> None:
    bucket = TokenBucket(rate=1.0, capacity=2.0, now=0.0)
    assert bucket.wait_time(0.0, 1.0, 0.0) == 0.0
    bucket.take(1.0)
    bucket.take(1.0)
    assert bucket.wait_time(0.0, 1.0, 0.0) == pytest.approx(1.0)
    assert bucket.wait_time(0.9, 1.0, 0.0) == pytest.approx(0.1)
    assert bucket.wait_time(0.9, 1.0, 0.2) == 0.0  # 10 ms of jitter is forgiven
    assert bucket.wait_time(100.0, 1.0, 0.0) == 0.0
    assert bucket.tokens == 2.0  # capped at capacity


# -- chat state errors -----------------------------------------------------------------------


async def test_blocked_user_gives_forbidden_and_member_updates(
    bot: Bot, double: TelegramDouble
) -> None:
    double.block(ALICE)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ALICE, "x")
    double.unblock(ALICE)
    await bot.send_message(ALICE, "de retour")
    blocked, unblocked = await bot.get_updates(timeout=0, allowed_updates=[])
    assert blocked.my_chat_member is not None
    assert isinstance(blocked.my_chat_member.new_chat_member, ChatMemberBanned)
    assert blocked.my_chat_member.new_chat_member.status == "kicked"
    assert unblocked.my_chat_member is not None
    assert isinstance(unblocked.my_chat_member.new_chat_member, ChatMemberMember)
    assert double.stats.forbidden == {"Forbidden: bot was blocked by the user": 1}


async def test_user_who_never_started_the_bot(bot: Bot, double: TelegramDouble) -> None:
    double.user(3001, "Carole", started=False)
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(3001, "x")
    await double.send_text(3001, "/start")
    await bot.send_message(3001, "bienvenue")
    double.deactivate(3001)
    with pytest.raises(Forbidden, match="user is deactivated"):
        await bot.send_message(3001, "x")


async def test_kicked_from_group(bot: Bot, double: TelegramDouble) -> None:
    double.remove_bot(GROUP, by_user_id=BOB)
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await bot.send_message(GROUP, "x")
    (update,) = await updates_after(bot)
    assert update.my_chat_member is not None and update.my_chat_member.chat.id == GROUP


async def test_migrated_group_raises_chat_migrated(bot: Bot, double: TelegramDouble) -> None:
    double.migrate(GROUP, -1001234567890)
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(GROUP, "x")
    assert caught.value.new_chat_id == -1001234567890
    sent = await bot.send_message(caught.value.new_chat_id, "x")
    assert sent.chat.type == "supergroup" and sent.chat.title == "Mairie"
    farewell, welcome = await updates_after(bot)
    assert farewell.message is not None and farewell.message.migrate_to_chat_id == -1001234567890
    assert welcome.message is not None and welcome.message.migrate_from_chat_id == GROUP


async def test_unknown_chat(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "x")


# -- transient failures ----------------------------------------------------------------------


async def test_502_html_page_is_a_network_error(bot: Bot, double: TelegramDouble) -> None:
    double.fail_next(1)
    with pytest.raises(NetworkError) as caught:
        await bot.send_message(ALICE, "x")
    assert not isinstance(caught.value, TimedOut)
    assert "Bad Gateway (502)" in str(caught.value)
    assert double.messages(ALICE) == []
    await bot.send_message(ALICE, "retry works")
    assert double.stats.failures == {502: 1}


async def test_502_json_body_is_a_network_error(bot: Bot, double: TelegramDouble) -> None:
    double.fail_next(1, body="json")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(ALICE, "x")


async def test_lost_response_still_delivers(bot: Bot, double: TelegramDouble) -> None:
    double.fail_next(1, 500, deliver=True)
    with pytest.raises(NetworkError):
        await bot.send_message(ALICE, "arrive quand même")
    assert [m["text"] for m in double.messages(ALICE)] == ["arrive quand même"]


async def test_slow_response_is_timed_out(double: TelegramDouble) -> None:
    double.fail_next(1, delay=1.0)
    request = HTTPXRequest(read_timeout=0.2)
    async with Bot(TOKEN, base_url=double.base_url, request=request) as slow:
        with pytest.raises(TimedOut):
            await slow.send_message(ALICE, "x")


async def test_faults_only_hit_the_chosen_methods(bot: Bot, double: TelegramDouble) -> None:
    double.fail_next(2, status=502)
    await bot.get_updates(timeout=0)  # not a send: untouched
    with pytest.raises(NetworkError):
        await bot.send_photo(ALICE, TINY_PNG)
    with pytest.raises(NetworkError):
        await bot.send_message(ALICE, "x")
    await bot.send_message(ALICE, "x")


# -- edits, callbacks, deletion --------------------------------------------------------------


async def test_edit_message_text(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "Niveau 1", reply_markup=keyboard("ack"))
    edited = await bot.edit_message_text(
        "<b>Niveau 2</b>", ALICE, sent.message_id, parse_mode="HTML"
    )
    assert isinstance(edited, Message)
    assert edited.text == "Niveau 2" and edited.edit_date is not None
    assert edited.reply_markup is None  # no reply_markup in the edit: keyboard removed
    record = double.last_message(ALICE)
    assert record is not None and record["text"] == "Niveau 2"
    assert [e["text"] for e in record["edits"]] == ["Niveau 2"]
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("<b>Niveau 2</b>", ALICE, sent.message_id, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", ALICE, 999)


async def test_edit_message_reply_markup(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "Choix", reply_markup=keyboard("a", "b"))
    edited = await bot.edit_message_reply_markup(ALICE, sent.message_id, reply_markup=keyboard("c"))
    assert isinstance(edited, Message) and edited.reply_markup == keyboard("c")
    assert edited.text == "Choix"
    await double.press(ALICE, ALICE, sent.message_id, "c")
    with pytest.raises(ValueError, match="no button"):
        await double.press(ALICE, ALICE, sent.message_id, "a")


async def test_answer_callback_query_once(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "?", reply_markup=keyboard("ok"))
    query_id = await double.press(ALICE, ALICE, sent.message_id, "ok")
    assert await bot.answer_callback_query(query_id, text="Merci", show_alert=True) is True
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await bot.answer_callback_query("12345")
    (answer,) = double.callback_answers
    assert (answer["text"], answer["show_alert"], answer["data"]) == ("Merci", True, "ok")


async def test_forged_callback_data(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "?", reply_markup=keyboard("ok"))
    await double.press(ALICE, ALICE, sent.message_id, "admin:delete_all", forged=True)
    (update,) = await updates_after(bot)
    assert update.callback_query is not None
    assert update.callback_query.data == "admin:delete_all"


async def test_delete_message(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(ALICE, "éphémère", reply_markup=keyboard("x"))
    assert await bot.delete_message(ALICE, sent.message_id) is True
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(ALICE, sent.message_id)
    (record,) = double.messages(ALICE)
    assert record["deleted"] is True
    # A button of a deleted message comes with an inaccessible message (date 0), as on
    # Telegram; PTB 22.8's CallbackQuery parses it as a Message with is_accessible False.
    await double.press(ALICE, ALICE, sent.message_id, "x")
    (update,) = await updates_after(bot)
    assert update.callback_query is not None and update.callback_query.message is not None
    assert update.callback_query.message.is_accessible is False
    assert update.callback_query.message.date == ZERO_DATE


# -- commands, photos, misc ------------------------------------------------------------------


async def test_set_my_commands_by_scope_and_language(bot: Bot, double: TelegramDouble) -> None:
    default = [BotCommand("start", "Démarrer"), BotCommand("zones", "Mes zones")]
    admin = [BotCommand("diffuser", "Diffuser une alerte")]
    assert await bot.set_my_commands(default) is True
    assert await bot.set_my_commands(default[:1], language_code="en") is True
    assert await bot.set_my_commands(admin, scope=BotCommandScopeChat(ALICE)) is True
    assert await bot.get_my_commands() == tuple(default)
    assert await bot.get_my_commands(language_code="en") == tuple(default[:1])
    assert await bot.get_my_commands(scope=BotCommandScopeChat(ALICE)) == tuple(admin)
    assert await bot.get_my_commands(scope=BotCommandScopeChat(BOB)) == ()
    assert double.commands_for("chat", chat_id=ALICE) == [ptb_json(admin[0])]
    assert set(double.commands) == {
        ("default", None, None, ""),
        ("default", None, None, "en"),
        ("chat", ALICE, None, ""),
    }
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start!", "x")])


async def test_send_photo_multipart(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_photo(ALICE, TINY_PNG, caption="<i>Carte</i>", parse_mode="HTML")
    assert sent.caption == "Carte" and sent.photo
    assert (sent.photo[-1].width, sent.photo[-1].height) == (1, 1)
    file = await bot.get_file(sent.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == TINY_PNG
    again = await bot.send_photo(BOB, sent.photo[-1].file_id)  # re-send by file_id
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    record = double.last_message(ALICE)
    assert record is not None and record["kind"] == "photo" and record["caption"] == "Carte"
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_photo(ALICE, TINY_PNG, caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(ALICE, "not-a-file-id")


def jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_a_users_photo_comes_in_sizes_with_its_caption_command(
        bot: Bot, double: TelegramDouble) -> None:
    data = jpeg((1600, 1200))
    await double.send_photo(ALICE, caption="/alerte vol Gray : x", data=data,
                            media_group_id="album-1")
    (update,) = await updates_after(bot)
    message = update.message
    assert message is not None and message.media_group_id == "album-1"
    assert [size.width for size in message.photo] == [90, 320, 800, 1280, 1600]
    assert [size.height for size in message.photo] == [68, 240, 600, 960, 1200]
    assert message.caption_entities[0].type == "bot_command"
    assert message.caption_entities[0].length == len("/alerte")
    largest = await bot.get_file(message.photo[-1].file_id)
    assert bytes(await largest.download_as_bytearray()) == data
    thumbnail = await bot.get_file(message.photo[0].file_id)
    assert (await thumbnail.download_as_bytearray())[:3] == b"\xff\xd8\xff"  # a JPEG


async def test_send_photo_refuses_what_telegram_refuses(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_photo(ALICE, jpeg((2000, 1000)))
    assert [size.width for size in sent.photo] == [90, 320, 800, 1280, 2000]
    again = await bot.send_photo(BOB, sent.photo[1].file_id)  # any size names the photo
    assert [size.file_id for size in again.photo] == [size.file_id for size in sent.photo]
    assert (double.stats.photo_uploads, double.stats.photos_by_file_id) == (1, 1)
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(ALICE, b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(BadRequest, match=r"(?i)photo_invalid_dimensions"):
        await bot.send_photo(ALICE, jpeg((2100, 100)))
    with pytest.raises(TelegramError, match="Request Entity Too Large"):
        await bot.send_photo(ALICE, jpeg((10, 10)) + bytes(10 * 1024 * 1024))
    assert double.stats.photo_uploads == 1  # refused uploads are not counted


async def test_get_file_stops_at_twenty_megabytes(bot: Bot, double: TelegramDouble) -> None:
    await double.send_document(ALICE, bytes(20 * 1024 * 1024 + 1), "big.png", "image/png")
    await double.send_document(ALICE, b"small", "small.txt", "text/plain", caption="/x")
    big, small = await updates_after(bot)
    assert big.message is not None and big.message.document is not None
    assert big.message.document.file_size == 20 * 1024 * 1024 + 1
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(big.message.document.file_id)
    assert small.message is not None and small.message.document is not None
    file = await bot.get_file(small.message.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"small"


async def test_webhook_blocks_polling_until_deleted(bot: Bot, double: TelegramDouble) -> None:
    await bot.set_webhook("https://example.invalid/hook")
    assert (await bot.get_webhook_info()).url == "https://example.invalid/hook"
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)
    await double.send_text(ALICE, "x")
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert await updates_after(bot) == ()


class Receiver:
    """A webhook endpoint on loopback: records each POST, answers the next planned status."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.statuses = list(statuses)  # then 200
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.on_post)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def on_post(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.json()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def texts(self) -> list[str]:
        return [body["message"]["text"] for _, body in self.posts if "message" in body]


async def until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_webhook_receives_updates_in_order_with_the_secret(
        bot: Bot, double: TelegramDouble) -> None:
    async with Receiver() as receiver:
        assert await bot.set_webhook(receiver.url, secret_token="s3cret-_x",
                                     allowed_updates=["message"], max_connections=5)
        for text in ("un", "deux", "trois"):
            await double.send_text(ALICE, text)
        sent = await bot.send_message(ALICE, "b", reply_markup=keyboard("k"))
        await double.press(ALICE, ALICE, sent.message_id, "k")  # not in allowed_updates
        await until(lambda: len(receiver.posts) == 3)
        assert receiver.texts() == ["un", "deux", "trois"]
        headers, first = receiver.posts[0]
        assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret-_x"
        assert headers["Content-Type"] == "application/json"
        message = Update.de_json(first, bot).message
        assert message is not None and message.from_user is not None
        assert message.from_user.id == ALICE
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await updates_after(bot)
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count, info.max_connections) == (receiver.url, 0, 5)
        assert info.allowed_updates == ("message",) and info.last_error_message is None
        assert double.stats.webhook_posts == {200: 3} and double.stats.dropped_updates == 1
        assert double.webhook is not None and double.webhook["secret_token"] == "s3cret-_x"


async def test_webhook_retries_an_update_until_it_is_accepted(
        bot: Bot, double: TelegramDouble) -> None:
    async with Receiver(statuses=(500, 403)) as receiver:
        await bot.set_webhook(receiver.url)
        await double.send_text(ALICE, "un")
        await double.send_text(ALICE, "deux")
        await until(lambda: len(receiver.posts) == 4)
        assert receiver.texts() == ["un", "un", "un", "deux"]  # the second waits its turn
        assert "X-Telegram-Bot-Api-Secret-Token" not in receiver.posts[0][0]  # none was set
        info = await bot.get_webhook_info()
        assert info.last_error_message == "Wrong response from the webhook: 403 Forbidden"
        assert info.last_error_date is not None and info.pending_update_count == 0
        assert double.stats.webhook_posts == {500: 1, 403: 1, 200: 2}


async def test_delete_webhook_hands_pending_updates_back_to_get_updates(
        bot: Bot, double: TelegramDouble) -> None:
    async with Receiver(statuses=(503,) * 1_000) as receiver:
        await bot.set_webhook(receiver.url)
        await double.send_text(ALICE, "en attente")
        await until(lambda: len(receiver.posts) >= 2)
        assert await bot.delete_webhook(drop_pending_updates=False) is True
        posts = len(receiver.posts)
        [update] = await updates_after(bot)
        assert update.message is not None and update.message.text == "en attente"
        await asyncio.sleep(0.2)
        assert len(receiver.posts) == posts  # nothing is pushed any more
        assert double.webhook is None and (await bot.get_webhook_info()).url == ""


async def test_webhook_to_a_closed_port_or_another_host_keeps_the_update(
        bot: Bot, double: TelegramDouble) -> None:
    async with Receiver() as receiver:
        closed = receiver.url
    await bot.set_webhook(closed)
    await double.send_text(ALICE, "x")
    await until(lambda: double.stats.webhook_posts[0] >= 2)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1 and info.last_error_message == "Connection refused"
    await bot.set_webhook("https://bot.example.org/hook")  # never contacted: loopback only
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1 and "loopback" in (info.last_error_message or "")


async def test_set_webhook_checks_url_and_secret(bot: Bot, double: TelegramDouble) -> None:
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await bot.set_webhook("https://bot.example.org/hook", secret_token="a+b")
    with pytest.raises(BadRequest, match=r"(?i)an https url must be provided"):
        await bot.set_webhook("ftp://bot.example.org/hook")
    assert double.webhook is None
    await bot.set_webhook("https://bot.example.org/hook")
    assert await bot.set_webhook("") is True  # an empty url removes the webhook
    assert double.webhook is None


async def test_get_chat_and_chat_action(bot: Bot) -> None:
    info = await bot.get_chat(GROUP)
    assert (info.id, info.type, info.title) == (GROUP, "group", "Mairie")
    assert await bot.send_chat_action(ALICE, "typing") is True


async def test_get_chat_member_reports_the_bots_standing(bot: Bot, double: TelegramDouble) -> None:
    async def bot_status() -> str:
        return str((await bot.get_chat_member(GROUP, bot.id)).status)

    assert await bot_status() == "member"
    assert (await bot.get_chat_member(GROUP, ALICE)).status == "member"
    double.user(1003, "Carole")
    assert (await bot.get_chat_member(GROUP, 1003)).status == "left"
    double.world.chat(GROUP).bot_can_send = False
    restricted = await bot.get_chat_member(GROUP, bot.id)
    assert isinstance(restricted, ChatMemberRestricted) and not restricted.can_send_messages
    double.world.chat(GROUP).bot_admin = True
    assert await bot_status() == "administrator"
    double.remove_bot(GROUP, ALICE)
    with pytest.raises(Forbidden, match="bot is not a member of the group chat"):
        await bot.get_chat_member(GROUP, bot.id)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat_member(-999, bot.id)
    double.add_bot(GROUP, ALICE)
    double.migrate(GROUP, -1002002, ALICE)
    with pytest.raises(ChatMigrated) as moved:
        await bot.get_chat_member(GROUP, bot.id)
    assert moved.value.new_chat_id == -1002002


async def test_wait_for_message(bot: Bot, double: TelegramDouble) -> None:
    async def later() -> None:
        await asyncio.sleep(0.1)
        await bot.send_message(ALICE, "premier")
        await bot.send_message(ALICE, "second")

    task = asyncio.create_task(later())
    record = await double.wait_for_message(ALICE, lambda m: m["text"] == "second", timeout=5)
    assert record["text"] == "second"
    await task
    assert (await double.wait_for_message(ALICE, after=record["message_id"] - 1)) is record
    with pytest.raises(TimeoutError):
        await double.wait_for_message(ALICE, after=record["message_id"], timeout=0.2)


async def test_stats_counters(bot: Bot, double: TelegramDouble) -> None:
    await bot.send_message(ALICE, "ok")
    double.block(BOB)
    for call in (
        bot.send_message(BOB, "x"),
        bot.send_message(ALICE, "<b>", parse_mode="HTML"),
    ):
        with pytest.raises((Forbidden, BadRequest)):
            await call
    assert (double.stats.count_403, double.stats.count_400, double.stats.accepted_total) == (
        1,
        1,
        1,
    )
    stamp, chat_id = double.stats.accepted_at[0]
    assert chat_id == ALICE and abs(stamp - time.time()) < 5
    assert double.stats.requests["sendmessage"] == 3
    assert double.stats.snapshot()["accepted_chats"] == 1


# -- a real PTB Application, as the bot's TelegramTransport builds it ------------------------


async def test_application_polling_end_to_end(double: TelegramDouble) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(
            update.effective_chat.id, "Bienvenue", reply_markup=keyboard("zones")
        )

    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"http://127.0.0.1:{double.port}/bot")
        .base_file_url(f"http://127.0.0.1:{double.port}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            user_message = await double.send_text(ALICE, "/start")
            reply = await double.wait_for_message(ALICE, after=user_message["message_id"])
        finally:
            await app.updater.stop()
            await app.stop()
    assert reply["text"] == "Bienvenue"
    assert double.pending_updates == []  # the updater confirmed what it processed
