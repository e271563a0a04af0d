#!/usr/bin/env python3
"""Start the alert bot: parse arguments, load the configuration, run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.config import ConfigError, load_config
from bot.geo.communes import GeoDataError
from bot.storage.database import DatabaseError

EXIT_CONFIG = 2


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Alert broadcast bot")
    parser.add_argument("--config", type=Path, default=Path("config/bot.yaml"),
                        help="YAML configuration (default: config/bot.yaml)")
    parser.add_argument("--console", action="store_true",
                        help="play every role in this terminal (default if no platform is on)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "demo"],
                        help="run: the bot (default); demo: the scripted console scenario")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.DEBUG if arguments.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(arguments.config)
        if arguments.command == "demo":
            from bot.demo import run_demo

            return asyncio.run(run_demo(config))
        from bot.main import run

        return asyncio.run(run(config, arguments.console))
    except (ConfigError, GeoDataError, DatabaseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
