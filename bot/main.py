"""What ``run_bot.py`` runs: the bot on its configured transports, or the console."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bot.app import BotApp, build_services
from bot.config import Config, ConfigError
from bot.transports.base import Transport
from bot.transports.console import ConsoleTransport

log = logging.getLogger(__name__)


def platform_transports(config: Config) -> dict[str, Transport]:
    """The chat platforms enabled in the configuration (console excluded)."""
    transports: dict[str, Transport] = {}
    # Telegram and Matrix transports come with their own issues; until then a
    # configuration that enables them is refused rather than silently ignored.
    for name in ("telegram", "matrix"):
        if getattr(config, name).enabled:
            raise ConfigError(f"{name}.enabled: the {name} transport is not available yet")
    return transports


async def run(config: Config, console: bool) -> int:
    transports = platform_transports(config)
    terminal: ConsoleTransport | None = None
    if console or not transports:  # nothing configured: the console is the default
        terminal = ConsoleTransport(config.console.officers_channel)
        transports["console"] = terminal
    services = await build_services(config, platforms=frozenset(transports))
    app = BotApp(services, transports)
    await app.start()
    try:
        if terminal is not None:
            await terminal.interact()
        else:
            await _wait_for_signal()
    finally:
        await app.stop()
    return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    log.info("bot running; Ctrl-C to stop")
    await stop.wait()
