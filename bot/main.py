"""What ``run_bot.py`` runs: the bot on its configured transports, or the console."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from pathlib import Path

from bot.app import BotApp, build_services
from bot.config import Config
from bot.context import Services
from bot.geo.communes import CommuneLayer
from bot.leader import Leadership, wait_to_lead
from bot.organisations import configured_channels
from bot.roles import Action
from bot.storage.database import is_postgresql
from bot.storage.transport_state import TransportState
from bot.transports.base import Transport
from bot.transports.console import ConsoleTransport

log = logging.getLogger(__name__)
LEADERSHIP_LOST = 75  # exit status: the service manager restarts it, as a standby


def enabled_platforms(config: Config, console: bool) -> list[str]:
    platforms = [name for name in ("telegram", "matrix", "whatsapp")
                 if getattr(config, name).enabled]
    if console or not platforms:  # nothing configured: the console is the default
        platforms.append("console")
    return platforms


def build_transports(config: Config, services: Services) -> dict[str, Transport]:
    """The enabled platforms' transports; they need the services (database, roles)."""
    transports: dict[str, Transport] = {}
    for platform in services.platforms:
        if platform == "telegram":
            from bot.transports.telegram import TelegramTransport

            transports[platform] = TelegramTransport(
                config.telegram, connections=telegram_connections(config),
                state=TransportState(services.db, "telegram"),
                more_officers=[int(chat) for chat in configured_channels(config, platform)])
        elif platform == "matrix":
            from bot.transports.matrix import MatrixTransport

            transports[platform] = MatrixTransport(
                config.matrix, TransportState(services.db, "matrix"),
                is_admin=lambda who: services.roles.may(who, Action.REGISTER_GROUP),
                more_officers=configured_channels(config, platform))
        elif platform == "whatsapp":
            transports[platform] = whatsapp_transport(config, services)
        else:
            transports[platform] = ConsoleTransport(
                config.console.officers_channel, files_dir=console_files_dir(config),
                more_channels=configured_channels(config, platform))
    return transports


def whatsapp_transport(config: Config, services: Services) -> Transport:
    from bot.i18n import Translator
    from bot.storage.whatsapp import WhatsAppStore
    from bot.transports.whatsapp import Labels, WhatsAppTransport

    t = Translator(services.catalog, config.language, "whatsapp")
    return WhatsAppTransport(config.whatsapp, WhatsAppStore(services.db), services.clock,
                             labels=Labels(list_button=t("whatsapp.list_button")),
                             message_days=config.privacy.message_ids_retention_days,
                             unreachable_days=config.privacy.blocked_retention_days)


def console_files_dir(config: Config) -> Path:
    """Files the console « sends » are written beside the database, never in the cwd."""
    if config.database == ":memory:" or config.database.startswith(("postgresql:", "postgres:")):
        return Path(tempfile.gettempdir()) / "alerte-bot-console-files"
    return config.resolve(config.database).parent / "console-files"


def telegram_connections(config: Config) -> int:
    """Enough for every send the dispatcher keeps open (2 × in_flight) and people's replies
    beside them, never fewer than the transport's default."""
    from bot.transports.telegram import CONNECTION_POOL_SIZE

    in_flight = config.broadcast.in_flight_for(config.rate_limits.telegram)
    return max(CONNECTION_POOL_SIZE, 2 * in_flight + 16)


async def run(config: Config, console: bool) -> int:
    stop = _stop_on_signals()
    leadership, layer = None, None
    if is_postgresql(config.database) and not console:
        # Several processes may share the database: this one serves once it leads. The
        # commune layer (configuration only) is read before: a takeover does not wait for it.
        layer = CommuneLayer.load([config.resolve(p) for p in config.geo.communes])
        leadership = Leadership(config.database)
        listen = config.monitoring.address() if config.monitoring.listen else None
        if not await wait_to_lead(leadership, stop, listen):
            return 0
        leadership.watch(_leadership_lost)
    try:
        services = await build_services(config, geo=layer,
                                        platforms=frozenset(enabled_platforms(config, console)))
        transports = build_transports(config, services)
        app = BotApp(services, transports)
        try:  # a start that fails half-way still closes the database, or its thread stays
            await app.start()
            terminal = transports.get("console")
            if isinstance(terminal, ConsoleTransport):
                await terminal.interact()
            else:
                log.info("bot running; Ctrl-C to stop")
                await stop.wait()
        finally:
            await app.stop()
    finally:
        if leadership is not None:  # once stopped: a standby takes over at once
            await leadership.release()
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    return stop


def _leadership_lost() -> None:
    """No clean stop: it would go on sending while it stops, beside the new leader. The
    outbox survives a kill (its rows in flight are retried), and the service manager starts
    the process again, as a standby."""
    logging.shutdown()
    os._exit(LEADERSHIP_LOST)
