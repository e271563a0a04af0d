"""Session fixtures for a real Synapse; import them in a conftest.

    # tests/conftest.py
    pytest_plugins = ["tests.synapse.fixture"]
    # or: from tests.synapse.fixture import synapse, synapse_default_limits  # noqa: F401

The fixtures are synchronous (subprocess + urllib), so they work with any
pytest-asyncio loop scope. Tests are skipped if matrix-synapse is not installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from .server import SynapseServer

SKIP_REASON = "matrix-synapse is not installed (pip install -e '.[matrix-test]')"


def synapse_available() -> bool:
    return importlib.util.find_spec("synapse") is not None


def _run_server(
    factory: pytest.TempPathFactory, name: str, *, default_message_limits: bool
) -> Iterator[SynapseServer]:
    if not synapse_available():
        pytest.skip(SKIP_REASON)
    server = SynapseServer(factory.mktemp(name), default_message_limits=default_message_limits)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """One homeserver for the whole session, every rate limit raised."""
    yield from _run_server(tmp_path_factory, "synapse", default_message_limits=False)


@pytest.fixture(scope="session")
def synapse_default_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """Second homeserver (started only if requested) with Synapse's default rc_message."""
    yield from _run_server(tmp_path_factory, "synapse-default-limits", default_message_limits=True)
