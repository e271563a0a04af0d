"""The documents name tests that exist: a renamed or deleted regression test shows here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# `tests/test_x.py::test_name`, and the `::test_other` that follow it in the same cell.
REFERENCE = re.compile(r"`(tests/[a-z_/]+\.py)?::(test_[a-z0-9_]+)`|`(tests/[a-z_/]+\.py)`")


def named_tests(document: Path) -> list[tuple[str, str | None]]:
    """(file, test or None) for every reference; ``::name`` alone means the last file."""
    found: list[tuple[str, str | None]] = []
    current = ""
    for match in REFERENCE.finditer(document.read_text(encoding="utf-8")):
        current = match.group(1) or match.group(3) or current
        found.append((current, match.group(2)))
    return found


@pytest.mark.parametrize("document", ["docs/security.md"])
def test_every_test_a_document_names_exists(document: str) -> None:
    references = named_tests(ROOT / document)
    assert len(references) > 20
    missing = [f"{file}::{test}" for file, test in references
               if not (ROOT / file).is_file() or (test and not re.search(
                   rf"^(async )?def {test}\(", (ROOT / file).read_text(encoding="utf-8"),
                   re.MULTILINE))]
    assert missing == []
