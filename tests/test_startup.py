"""Start-up refusals: one clear line, exit code 2, nothing started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def reference_keys() -> str:
    return (f"communities: {ROOT / 'config/communities.yaml'}\n"
            f"categories: {ROOT / 'config/categories.yaml'}\n")


def run_bot(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=None)


def test_unreadable_geojson_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "communes.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    config = tmp_path / "bot.yaml"
    config.write_text(reference_keys() + f"database: {tmp_path / 'db.sqlite3'}\n"
                      f"geo:\n  communes: [{broken}]\n", encoding="utf-8")
    result = run_bot(config)
    assert result.returncode == 2
    assert "communes.geojson" in result.stderr and "JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "db.sqlite3").exists()


def test_missing_geojson_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(reference_keys() + f"database: {tmp_path / 'db.sqlite3'}\n"
                      "geo:\n  communes: [nowhere.geojson]\n", encoding="utf-8")
    result = run_bot(config)
    assert result.returncode == 2 and "nowhere.geojson" in result.stderr
