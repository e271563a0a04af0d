"""CAP 1.2 namespace, the official XML schema, and a hardened XML parser.

``CAP-v1.2.xsd`` next to this file is the OASIS schema (see the comment at its top for where
the copy comes from). lxml has no type information, so it is imported here once and used
through ``Any``; everything this module exports is typed.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from bot.resources import package_path

__all__ = [
    "CAP_NS",
    "NS",
    "SCHEMA_PATH",
    "etree",
    "first_schema_error",
    "format_time",
    "hardened_parser",
    "schema",
]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
NS = {"cap": CAP_NS}
SCHEMA_PATH = package_path("bot.cap", "CAP-v1.2.xsd")
_MAX_ERROR_CHARS = 200


def hardened_parser() -> Any:
    """A fresh lxml parser that never loads a DTD, expands an entity or touches the network.

    Parsers keep state, so each parse gets its own. Documents that still carry a DOCTYPE are
    refused by the caller after parsing (the internal subset is read but never applied).
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        recover=False,
    )


_PER_THREAD = threading.local()


def schema() -> Any:
    """The compiled CAP 1.2 schema (``lxml.etree.XMLSchema``), loaded once per thread.

    CAP files are read on the event loop and written in the reply sender's worker thread
    (bot/deferred.py); a validator keeps its last errors (``error_log``), so two threads
    validating at once with one validator could read each other's errors.
    """
    validator = getattr(_PER_THREAD, "schema", None)
    if validator is None:
        document = etree.parse(str(SCHEMA_PATH), hardened_parser())
        validator = _PER_THREAD.schema = etree.XMLSchema(document)
    return validator


def first_schema_error(validator: Any) -> tuple[str, str]:
    """(line, short message) of the first error of a failed ``validator.validate``."""
    log = validator.error_log
    if len(log) == 0:
        return "?", "?"
    error = log[0]
    message = str(error.message).replace("{" + CAP_NS + "}", "")
    message = " ".join(message.split())
    if len(message) > _MAX_ERROR_CHARS:
        message = message[: _MAX_ERROR_CHARS - 1] + "…"
    return str(error.line), message


def format_time(moment: datetime) -> str:
    """CAP date-time: ``2026-11-24T14:00:00+01:00`` — whole seconds, explicit offset, no "Z".

    An offset that is not a whole number of minutes (historical zones) is written in UTC.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"CAP times must be timezone-aware, not {moment!r}")
    if offset % timedelta(minutes=1):
        moment = moment.astimezone(UTC)
    return moment.replace(microsecond=0).isoformat()
