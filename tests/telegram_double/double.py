"""TelegramDouble: a loopback Bot API server plus the controls tests need to drive it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from aiohttp import web
from telegram import Chat, User

from .api import SEND_METHODS, BotApi
from .errors import ApiError, not_found, unauthorized
from .faults import Body, Fault, FaultPlan, fault_response
from .params import read_params
from .payloads import JSON
from .ratelimit import RateLimiter, RateLimits
from .simulate import TINY_PNG, UserSimulator
from .stats import Stats
from .world import ChatRecord, CommandKey, Record, UserRecord, World

# Telegram answers 404 to a token that is not even shaped like one, 401 to a wrong one.
_TOKEN_SHAPE = re.compile(r"\d+:[\w-]+")
_MAX_UPLOAD = 50 * 1024 * 1024  # Telegram's multipart upload ceiling


def _dumps(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_response(status: int, payload: object) -> web.Response:
    return web.Response(status=status, body=_dumps(payload), content_type="application/json")


class TelegramDouble:
    """A fake Telegram Bot API on 127.0.0.1; see the package README for the full tour."""

    def __init__(
        self,
        token: str = "123:ABC",
        bot_username: str = "alerte_test_bot",
        *,
        bot_first_name: str = "Alerte Test",
        global_rate: float | None = None,
        paid_broadcast: bool | None = None,
        limits: RateLimits | None = None,
        max_text_length: int = 4096,
        max_caption_length: int = 1024,
        first_update_id: int = 1,
        host: str = "127.0.0.1",
    ) -> None:
        """``global_rate``/``paid_broadcast`` override the same fields of ``limits``."""
        self.token = token
        self.host = host
        overrides: dict[str, Any] = {}
        if global_rate is not None:
            overrides["global_rate"] = global_rate
        if paid_broadcast is not None:
            overrides["paid_broadcast"] = paid_broadcast
        self._limits = replace(limits or RateLimits(), **overrides)
        prefix = token.split(":", 1)[0]
        # The flags getMe reports for an ordinary bot (PTB keeps False values in to_dict()).
        bot = User(
            int(prefix) if prefix.isdigit() else 1,
            bot_first_name,
            True,
            username=bot_username,
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=False,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        self.world = World(UserRecord.of(bot), first_update_id)
        self.api = BotApi(
            self.world,
            RateLimiter(self._limits),
            max_text=max_text_length,
            max_caption=max_caption_length,
        )
        self._users = UserSimulator(self.world)
        self._faults = FaultPlan()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, port: int = 0) -> None:
        """Listen on ``host:port`` (0: any free port) in the running event loop."""
        self.world.updates.open()
        app = web.Application(client_max_size=_MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._on_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._on_file)
        # No access log: formatting a log line per request would halve benchmark throughput.
        # handler_cancellation: a client giving up on a long poll frees its handler at once.
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        await web.TCPSite(runner, self.host, port).start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        await self.api.webhooks.stop()
        self.world.updates.close()  # long polls return [] instead of holding up the shutdown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("TelegramDouble is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For ``Bot(base_url=...)`` / ``ApplicationBuilder().base_url(...)``: PTB appends the
        token, then ``/<method>``."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``base_file_url``: PTB appends the token, then ``/<file_path>``."""
        return f"http://{self.host}:{self.port}/file/bot"

    def url(self, method: str) -> str:
        """Full URL of a method, for raw HTTP clients (benchmarks)."""
        return f"{self.base_url}{self.token}/{method}"

    # -- HTTP ------------------------------------------------------------------------------
    async def _on_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()  # Telegram ignores method-name case
        self.world.stats.requests[method] += 1
        token = request.match_info["token"]
        if token != self.token:
            return self._error(unauthorized() if _TOKEN_SHAPE.fullmatch(token) else not_found())
        handler = self.api.handlers.get(method)
        if handler is None:
            return self._error(not_found())
        try:
            params = await read_params(request)
            fault = self._faults.take(method) if self._faults else None
            if fault is not None:
                return await self._fail(fault, method, params)
            result = await handler(params)
        except ApiError as exc:
            return self._error(exc)
        return _json_response(200, {"ok": True, "result": result})

    async def _fail(self, fault: Fault, method: str, params: dict[str, Any]) -> web.Response:
        if fault.deliver:
            # A refused request delivers nothing; the client sees the fault either way.
            with contextlib.suppress(ApiError):
                await self.api.handlers[method](params)
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        self.world.stats.failures[fault.status] += 1
        self.world.stats.errors[fault.status] += 1
        return fault_response(fault)

    def _error(self, exc: ApiError) -> web.Response:
        stats = self.world.stats
        stats.errors[exc.code] += 1
        if exc.code == 429:
            stats.rate_limited[exc.scope or "unknown"] += 1
        elif exc.code == 403:
            stats.forbidden[exc.description] += 1
        elif exc.code == 400:
            stats.bad_requests[exc.description] += 1
        return _json_response(exc.code, exc.payload())

    async def _on_file(self, request: web.Request) -> web.Response:
        stored = self.world.files.by_path(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            return _json_response(404, not_found().payload())
        return web.Response(body=stored.data, content_type=stored.mime_type)

    # -- people and chats ------------------------------------------------------------------
    def user(
        self,
        user_id: int,
        first_name: str = "User",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "fr",
        started: bool = True,
    ) -> UserRecord:
        """Declare a user and its private chat (chat id == user id).

        ``started=False``: the user never wrote to the bot, so sends answer 403
        "bot can't initiate conversation with a user" until the user sends something.
        """
        record = UserRecord.create(
            user_id,
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        self.world.add_user(record, started=started)
        return record

    def group(
        self,
        chat_id: int,
        title: str = "Group",
        *,
        kind: str = "group",
        members: Iterable[int] = (),
        username: str | None = None,
        bot_admin: bool = False,
    ) -> ChatRecord:
        """Declare a group/supergroup/channel the bot is in; unknown members are created."""
        if kind not in (Chat.GROUP, Chat.SUPERGROUP, Chat.CHANNEL):
            raise ValueError(f"kind must be group, supergroup or channel, not {kind!r}")
        member_ids = set(members)
        for member in member_ids - self.world.users.keys():
            self.user(member, f"User{member}")
        record = ChatRecord.create(
            Chat(chat_id, kind, title=title, username=username),
            members=member_ids,
            bot_admin=bot_admin,
        )
        self.world.add_chat(record)
        return record

    # -- what users do ---------------------------------------------------------------------
    async def send_text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        *,
        reply_to_message_id: int | None = None,
    ) -> JSON:
        """The user writes ``text`` (private chat, or group ``chat_id``); returns the Message.

        ``/commands`` (also ``/cmd@bot``), URLs, @mentions and #hashtags get their entities.
        """
        return self._users.text(user_id, text, chat_id, reply_to_message_id)

    async def send_location(
        self, user_id: int, latitude: float, longitude: float, chat_id: int | None = None
    ) -> JSON:
        return self._users.location(user_id, latitude, longitude, chat_id)

    async def send_sticker(
        self, user_id: int, chat_id: int | None = None, emoji: str = "👍"
    ) -> JSON:
        return self._users.sticker(user_id, chat_id, emoji)

    async def send_photo(
        self,
        user_id: int,
        chat_id: int | None = None,
        caption: str | None = None,
        *,
        data: bytes | None = None,
        media_group_id: str | None = None,
    ) -> JSON:
        """A photo (by default a 1x1 PNG) in several sizes, each downloadable through
        getFile + base_file_url; a ``/command`` caption carries its bot_command entity."""
        return self._users.photo(user_id, chat_id, caption, data or TINY_PNG, media_group_id)

    async def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str,
        mime_type: str,
        chat_id: int | None = None,
        caption: str | None = None,
    ) -> JSON:
        """A file sent as a document (an image sent uncompressed, say)."""
        return self._users.document(user_id, data, file_name, mime_type, chat_id, caption)

    async def send_voice(self, user_id: int, chat_id: int | None = None, duration: int = 3) -> JSON:
        return self._users.voice(user_id, chat_id, duration)

    async def edit_text(
        self, user_id: int, message_id: int, text: str, chat_id: int | None = None
    ) -> JSON:
        """The user edits one of their messages: an ``edited_message`` update."""
        return self._users.edit(user_id, message_id, text, chat_id)

    async def press(
        self,
        user_id: int,
        chat_id: int,
        message_id: int,
        callback_data: str,
        *,
        forged: bool = False,
    ) -> str:
        """Press an inline button; returns the callback query id.

        The data must be on one of the message's buttons unless ``forged=True`` (a tampered
        client can send any data; the bot must not trust it).
        """
        return self._users.press(user_id, chat_id, message_id, callback_data, forged=forged)

    def block(self, user_id: int) -> None:
        """Sends to the user now get 403; emits my_chat_member (member -> kicked)."""
        self._users.set_blocked(user_id, True)

    def unblock(self, user_id: int) -> None:
        self._users.set_blocked(user_id, False)

    def deactivate(self, user_id: int) -> None:
        """The account is deleted: sends get 403 "Forbidden: user is deactivated"."""
        self.world.chat(user_id).deactivated = True

    def remove_bot(self, chat_id: int, by_user_id: int) -> None:
        """Kick the bot from a group: 403 "bot was kicked from the group chat" + my_chat_member."""
        self._users.set_bot_membership(chat_id, by_user_id, member=False)

    def add_bot(self, chat_id: int, by_user_id: int) -> None:
        self._users.set_bot_membership(chat_id, by_user_id, member=True)

    def migrate(
        self, group_id: int, new_supergroup_id: int, by_user_id: int | None = None
    ) -> ChatRecord:
        """Upgrade a group; sends to the old id get 400 with parameters.migrate_to_chat_id."""
        self._users.migrate(group_id, new_supergroup_id, by_user_id)
        return self.world.chat(new_supergroup_id)

    # -- trouble on demand -----------------------------------------------------------------
    def fail_next(
        self,
        n: int = 1,
        status: int = 502,
        *,
        body: Body = "html",
        methods: Iterable[str] | None = SEND_METHODS,
        delay: float = 0.0,
        deliver: bool = False,
    ) -> None:
        """The next ``n`` requests to ``methods`` (default: send*; None: all) fail.

        ``body="html"`` is nginx's page (non-JSON), ``"json"`` a Bot-API-style error body.
        ``delay`` holds the reply back (beyond the client's read timeout: PTB raises TimedOut);
        ``deliver`` processes the request first, so the message exists despite the error.
        """
        names = None if methods is None else frozenset(m.lower() for m in methods)
        self._faults.add(Fault(n, status, body, names, delay, deliver))

    def inject_rate_limits(
        self, chat_id: int | None = None, *, retry_after: int = 5, count: int = 1
    ) -> None:
        """Answer the next ``count`` sends (to ``chat_id``, or any chat) with 429."""
        self.api.limiter.force(chat_id, retry_after, count)

    def configure_limits(self, **changes: Any) -> RateLimits:
        """Change limits at run time (fields of :class:`RateLimits`); buckets start full."""
        self._limits = replace(self._limits, **changes)
        self.api.limiter = RateLimiter(self._limits)
        return self._limits

    @property
    def limits(self) -> RateLimits:
        return self._limits

    # -- what the bot did ------------------------------------------------------------------
    def messages(self, chat_id: int) -> list[Record]:
        """The bot's messages in a chat, oldest first, deleted ones included (``deleted``)."""
        return list(self.world.chat(chat_id).sent)

    def last_message(self, chat_id: int) -> Record | None:
        sent = self.world.chat(chat_id).sent
        return sent[-1] if sent else None

    async def wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[Record], bool] | None = None,
        timeout: float = 5.0,
        *,
        after: int = 0,
    ) -> Record:
        """First bot message in ``chat_id`` with id > ``after`` matching ``predicate``.

        Looks at what is already there first, then waits for sends and edits.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        chat = self.world.chat(chat_id)
        while True:
            for record in chat.sent:
                if record["message_id"] > after and (predicate is None or predicate(record)):
                    return record
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no matching bot message in chat {chat_id} in {timeout}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.world.watch(chat_id), remaining)

    @property
    def bot(self) -> UserRecord:
        return self.world.bot

    @property
    def callback_answers(self) -> list[Record]:
        return self.world.callback_answers

    @property
    def commands(self) -> dict[CommandKey, list[dict[str, str]]]:
        """setMyCommands by (scope type, scope chat_id, scope user_id, language_code)."""
        return self.world.commands

    def commands_for(
        self,
        scope_type: str = "default",
        chat_id: int | None = None,
        user_id: int | None = None,
        language_code: str = "",
    ) -> list[dict[str, str]]:
        return self.world.commands.get((scope_type, chat_id, user_id, language_code), [])

    @property
    def stats(self) -> Stats:
        return self.world.stats

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        return self.world.updates.pending

    @property
    def webhook(self) -> Record | None:
        """setWebhook's parameters (``url``, ``secret_token``, ``allowed_updates``,
        ``max_connections``, ``drop_pending_updates``) and the last delivery error, or None."""
        return self.world.webhook
