"""Logging: one line per event, key=value, secrets never written.

Logs carry alert numbers and platform names, not personal data; tokens are scrubbed
from every record, whoever emits it (httpx logs request URLs, which for Telegram contain
the bot token).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from bot.config import Config

TELEGRAM_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
REDACTED = "[secret]"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, REDACTED)
        record.msg, record.args = TELEGRAM_TOKEN.sub(REDACTED, message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TELEGRAM_TOKEN.sub(REDACTED, text)


def secrets_of(config: Config) -> list[str]:
    return [config.telegram.token, config.telegram.webhook_secret, config.matrix.access_token,
            config.matrix.password, config.secret_key]


def configure(verbose: bool, secrets: Iterable[str] = (), stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(logging.Formatter(
        "time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "nio", "telegram.ext"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
