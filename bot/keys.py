"""The deployment's secret key: what keeps the database file alone from undoing privacy.

The audit trail names subscribers by a pseudonym, which must not be recomputable from a
messaging id by whoever holds the database (a stolen disk or backup would re-link an
erased person to their tips); and its hash chain must not be recomputable after an edit.
Both are HMAC-SHA256 keyed by ``secret_key`` (``ALERTE_BOT_SECRET_KEY`` in the
environment, never in the database); each use of the secret gets its own key derived
from it.

Without a secret (allowed only when neither Telegram nor Matrix is enabled: the console,
tests, the demo, where nobody real is involved) the public development key is used: it
keeps every run consistent and protects nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from bot.config import Config

DEVELOPMENT_SECRET = "alerte-bot public development key: protects nothing"


@dataclass(frozen=True)
class Keys:
    pseudonym: bytes
    audit: bytes  # the links of the audit chain (bot/storage/audit.py)
    development: bool = False

    @classmethod
    def from_secret(cls, secret: str, development: bool = False) -> Keys:
        root = secret.encode("utf-8")
        return cls(_derive(root, "audit pseudonym"), _derive(root, "audit chain"), development)

    @classmethod
    def of(cls, config: Config) -> Keys:
        if config.secret_key:
            return cls.from_secret(config.secret_key)
        return cls.from_secret(DEVELOPMENT_SECRET, development=True)

    def pseudonym_of(self, identity: str) -> str:
        digest = hmac.new(self.pseudonym, identity.encode("utf-8"), hashlib.sha256)
        return "pseudo:" + digest.hexdigest()[:12]

    @property
    def audit_check(self) -> str:
        """Names the key that signs the audit chain without giving it away."""
        return hmac.new(self.audit, b"key check", hashlib.sha256).hexdigest()[:16]


def _derive(root: bytes, purpose: str) -> bytes:
    return hmac.new(root, f"alerte-bot {purpose}".encode(), hashlib.sha256).digest()
