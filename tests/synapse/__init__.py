"""Test harness running a real Synapse homeserver on loopback."""

from .admin import MatrixUser
from .bare_sender import BareSendResult, bare_concurrent_send
from .client import MatrixHttpError
from .server import SynapseServer, SynapseStartupError

__all__ = [
    "BareSendResult",
    "MatrixHttpError",
    "MatrixUser",
    "SynapseServer",
    "SynapseStartupError",
    "bare_concurrent_send",
]
