"""One aiohttp application served on HOST:PORT: the webhooks (Telegram, WhatsApp), the
monitoring endpoints and a standby's /healthz all start and stop the same way."""

from __future__ import annotations

from aiohttp import web


async def listen(app: web.Application, host: str, port: int,
                 shutdown_timeout: float = 60.0) -> web.AppRunner:
    """Serve ``app`` (no access log: probes and platform calls are routine, and a
    webhook's path may itself be a secret). An address that cannot be bound is an
    OSError, with nothing left running; ``runner.addresses`` says the port bound."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
