"""Open conversations, stored so that a restart does not lose anybody's progress.

Within ``memo()`` (the core opens one per incoming event, inside its transaction) a
conversation is read from the database once: later reads of the same event get what was
read or written last, as a fresh object, exactly what the database would answer then.
Without it (the clock's jobs, tools) every read goes to the database.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
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


@dataclass(frozen=True, slots=True)
class _Copy:
    """A conversation as stored: its data kept as JSON, so that each read gets its own."""

    state: ConversationState
    data: str

    def fresh(self) -> ConversationState:
        return replace(self.state, data=json.loads(self.data))


# Identity → the conversation as the database has it now (None: no conversation).
Memo = dict[str, _Copy | None]


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Per task: each event's handling has its own (the lanes run several at once).
        self._memo: contextvars.ContextVar[Memo | None] = contextvars.ContextVar(
            f"conversations_memo_{id(self)}", default=None)

    @asynccontextmanager
    async def memo(self) -> AsyncIterator[None]:
        """Remember conversations read or written until the block ends. Open it inside the
        transaction: a rollback ends the block, and the database is again the only truth.
        Every change to the table must go through this store while it is open."""
        token = self._memo.set({})
        try:
            yield
        finally:
            self._memo.reset(token)

    async def get(self, identity: str) -> ConversationState | None:
        memo = self._memo.get()
        if memo is not None and identity in memo:
            known = memo[identity]
            return None if known is None else known.fresh()
        row = await self.db.fetchone("SELECT * FROM conversations WHERE identity = ?", (identity,))
        if row is None:
            if memo is not None:
                memo[identity] = None
            return None
        state = ConversationState.from_row(row)
        if memo is not None:  # before the caller changes it
            memo[identity] = _Copy(replace(state, data={}), row["data"])
        return state

    async def save(self, state: ConversationState, now: datetime) -> None:
        data = json.dumps(state.data, ensure_ascii=False)
        await self.db.execute(
            "INSERT INTO conversations (identity, platform, chat_id, kind, step, data, nonce,"
            " language, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (identity) DO UPDATE SET platform = excluded.platform,"
            " chat_id = excluded.chat_id, kind = excluded.kind, step = excluded.step,"
            " data = excluded.data, nonce = excluded.nonce, language = excluded.language,"
            " updated_at = excluded.updated_at, expires_at = excluded.expires_at",
            (state.identity, state.platform, state.chat_id, state.kind, state.step,
             data, state.nonce, state.language, stamp(now), stamp(state.expires_at)))
        memo = self._memo.get()
        if memo is not None:
            # As the database would give it back: the deadline to the stamp's precision.
            stored = replace(state, data={}, expires_at=parse_stamp(stamp(state.expires_at)))
            memo[state.identity] = _Copy(stored, data)

    async def delete(self, identity: str) -> None:
        await self.db.execute("DELETE FROM conversations WHERE identity = ?", (identity,))
        memo = self._memo.get()
        if memo is not None:
            memo[identity] = None

    async def expired(self, now: datetime) -> list[ConversationState]:
        rows = await self.db.fetchall(
            "SELECT * FROM conversations WHERE expires_at <= ? ORDER BY expires_at",
            (stamp(now),))
        return [ConversationState.from_row(row) for row in rows]
