"""``make bench``: run every benchmark, write results/latest.json and results/latest.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import core

RESULTS = Path(__file__).resolve().parent / "results"


def markdown(rows: list[dict[str, object]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="alert bot benchmarks")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    arguments = parser.parse_args(argv)
    size = 500 if arguments.smoke else arguments.subscribers
    rows = core.perimeter_parsing(repeat=5 if arguments.smoke else 200)
    rows += asyncio.run(core.resolution_and_dispatch(size))
    meta = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "cores": os.cpu_count(),
            "python": platform.python_version(), "smoke": arguments.smoke}
    RESULTS.mkdir(exist_ok=True)
    name = "smoke" if arguments.smoke else "latest"
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    table = markdown(rows)
    (RESULTS / f"{name}.md").write_text(f"Machine: {meta['cores']} cores, Python "
                                        f"{meta['python']}, {meta['when']}\n\n{table}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
