#!/usr/bin/env python3
"""Start the alert bot: parse arguments, load the configuration, run."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot import logs
from bot.config import Config, ConfigError, load_config
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
    parser.add_argument("command", nargs="?", default="run",
                        choices=["run", "demo", "audit", "export", "backup", "restore",
                                 "check"],
                        help="run: the bot (default); demo: the scripted console scenario; "
                             "check: connect to what the configuration names, report problems; "
                             "audit verify: check the audit trail's hash chain; export: "
                             "alerts as CSV; backup FILE / restore FILE: the database")
    parser.add_argument("argument", nargs="?",
                        help="audit: verify; backup/restore: the backup file")
    parser.add_argument("--out", type=Path, help="export: write the CSV to this file")
    return parser.parse_args(argv)


def dispatch(arguments: argparse.Namespace, config: Config) -> int:
    if arguments.command == "demo":
        from bot.demo import run_demo

        return asyncio.run(run_demo(config))
    if arguments.command == "check":
        from bot.check import run_checks

        return asyncio.run(run_checks(config, config_file=arguments.config))
    if arguments.command == "audit":
        from bot.maintenance import verify_audit

        return asyncio.run(verify_audit(config))
    if arguments.command == "export":
        from bot.maintenance import export_csv

        return asyncio.run(export_csv(config, arguments.out))
    if arguments.command in ("backup", "restore"):
        from bot import maintenance

        if not arguments.argument:
            print(f"usage: run_bot.py {arguments.command} FILE", file=sys.stderr)
            return EXIT_CONFIG
        operation = maintenance.backup if arguments.command == "backup" else maintenance.restore
        return operation(config, Path(arguments.argument))
    from bot.main import run

    return asyncio.run(run(config, arguments.console))


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    logs.configure(arguments.verbose)
    try:
        config = load_config(arguments.config)
        logs.configure(arguments.verbose, logs.secrets_of(config))
        return dispatch(arguments, config)
    except (ConfigError, GeoDataError, DatabaseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
