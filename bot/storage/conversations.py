"""Open conversations, stored so that a restart does not lose anybody's progress."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import parse_stamp, stamp
from bot.storage.database import Database, Row


@dataclass(slots=True)
class ConversationState:
    identity: str
    platform: str
    chat_id: str
    kind: str
    step: str
    data: dict[str, Any]
    nonce: str
    language: str
    expires_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ConversationState:
        return cls(row["identity"], row["platform"], row["chat_id"], row["kind"], row["step"],
                   json.loads(row["data"]), row["nonce"], row["language"],
                   parse_stamp(row["expires_at"]))


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, identity: str) -> ConversationState | None:
        row = await self.db.fetchone("SELECT * FROM conversations WHERE identity = ?", (identity,))
        return None if row is None else ConversationState.from_row(row)

    async def save(self, state: ConversationState, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO conversations (identity, platform, chat_id, kind, step, data, nonce,"
            " language, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (identity) DO UPDATE SET platform = excluded.platform,"
            " chat_id = excluded.chat_id, kind = excluded.kind, step = excluded.step,"
            " data = excluded.data, nonce = excluded.nonce, language = excluded.language,"
            " updated_at = excluded.updated_at, expires_at = excluded.expires_at",
            (state.identity, state.platform, state.chat_id, state.kind, state.step,
             json.dumps(state.data, ensure_ascii=False), state.nonce, state.language,
             stamp(now), stamp(state.expires_at)))

    async def delete(self, identity: str) -> None:
        await self.db.execute("DELETE FROM conversations WHERE identity = ?", (identity,))

    async def expired(self, now: datetime) -> list[ConversationState]:
        rows = await self.db.fetchall(
            "SELECT * FROM conversations WHERE expires_at <= ? ORDER BY expires_at",
            (stamp(now),))
        return [ConversationState.from_row(row) for row in rows]
