from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import TestBot, test_config

pytest_plugins = ["tests.synapse.fixture"]


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TestBot]:
    """A started bot on memory transports; deliveries happen at ``await bot.drain()``."""
    test_bot = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    yield test_bot
    await test_bot.stop()
