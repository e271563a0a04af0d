"""The command line: ``alerte-bot``, ``python -m bot`` and ``run_bot.py`` are this.

Every command but ``init`` reads a configuration (``--config``, else ``$ALERTE_BOT_CONFIG``,
else ``config/bot.yaml``; ``demo`` without ``--config`` plays on the demo configuration shipped
with the bot).
A broken configuration, database or commune layer is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bot import logs
from bot.config import Config, ConfigError, load_config
from bot.geo.communes import GeoDataError
from bot.resources import bundled
from bot.storage.database import DatabaseError

EXIT_CONFIG = 2
CONFIG_VARIABLE = "ALERTE_BOT_CONFIG"
DEFAULT_CONFIG = Path("config/bot.yaml")
COMMANDS = ["run", "demo", "check", "init", "audit", "export", "backup", "restore",
            "migrate-to-postgresql"]


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="alerte-bot", description="Alert broadcast bot")
    parser.add_argument("--config", type=Path,
                        help=f"YAML configuration (default: ${CONFIG_VARIABLE}, else "
                             f"{DEFAULT_CONFIG}; demo: the demo configuration shipped with "
                             "the bot)")
    parser.add_argument("--console", action="store_true",
                        help="play every role in this terminal (default if no platform is on)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("command", nargs="?", default="run", choices=COMMANDS,
                        help="run: the bot (default); demo: the scripted console scenario; "
                             "check: test the configuration and each platform's connection; "
                             "init DIR: write a starter configuration; audit verify: check "
                             "the audit trail's hash chain; export: alerts as CSV; "
                             "backup FILE / restore FILE: the database; migrate-to-postgresql"
                             " --from FILE --to URL: copy an SQLite database into PostgreSQL")
    parser.add_argument("argument", nargs="?",
                        help="init: the folder; audit: verify; backup/restore: the file")
    parser.add_argument("--out", type=Path, help="export: write the CSV to this file")
    parser.add_argument("--organisation", metavar="KEY",
                        help="export: only this organisation's alerts (an overseer's: all)")
    parser.add_argument("--departement", action="append", default=[], metavar="NN",
                        help="init: a département served (repeat for several: 25, 2A, 974)")
    parser.add_argument("--database", metavar="PATH",
                        help="init: where the database will live (default: DIR/var/bot.sqlite3)")
    parser.add_argument("--force", action="store_true", help="init: replace DIR/bot.yaml")
    parser.add_argument("--from", dest="source", type=Path, metavar="FILE",
                        help="migrate-to-postgresql: the SQLite database (default: the"
                             " configuration's)")
    parser.add_argument("--to", dest="target", metavar="URL",
                        help="migrate-to-postgresql: postgresql://user@host/database (empty)")
    return parser.parse_args(argv)


def config_path(arguments: argparse.Namespace) -> Path:
    if arguments.config is not None:
        return Path(arguments.config)
    if os.environ.get(CONFIG_VARIABLE):
        return Path(os.environ[CONFIG_VARIABLE])
    if arguments.command == "demo":  # the scenario needs the demo's console roles
        return bundled("demo.yaml")
    if not DEFAULT_CONFIG.exists():
        raise ConfigError(f"{DEFAULT_CONFIG}: file not found (give --config FILE, or write one "
                          "with: alerte-bot init DIR --departement NN)")
    return DEFAULT_CONFIG


def dispatch(arguments: argparse.Namespace, config: Config, config_file: Path) -> int:
    command = arguments.command
    if command == "demo":
        from bot.demo import run_demo

        return asyncio.run(run_demo(config))
    if command == "audit":
        from bot.maintenance import verify_audit

        return asyncio.run(verify_audit(config))
    if command == "export":
        from bot.maintenance import export_csv

        return asyncio.run(export_csv(config, arguments.out,
                                      organisation=arguments.organisation))
    if command == "check":
        from bot.check import run_checks

        return asyncio.run(run_checks(config, config_file=config_file))
    if command == "migrate-to-postgresql":
        return to_postgresql(arguments, config)
    if command in ("backup", "restore"):
        return database_file_command(arguments, config)
    from bot.main import run

    return asyncio.run(run(config, arguments.console))


def database_file_command(arguments: argparse.Namespace, config: Config) -> int:
    from bot import maintenance

    if not arguments.argument:
        print(f"usage: alerte-bot {arguments.command} FILE", file=sys.stderr)
        return EXIT_CONFIG
    operation = maintenance.backup if arguments.command == "backup" else maintenance.restore
    return operation(config, Path(arguments.argument))


def to_postgresql(arguments: argparse.Namespace, config: Config) -> int:
    from bot.storage.database import is_postgresql
    from bot.to_postgresql import migrate_to_postgresql

    source = arguments.source
    if source is None and not is_postgresql(config.database) and config.database != ":memory:":
        source = config.resolve(config.database)
    if source is None or not arguments.target:
        print("usage: alerte-bot migrate-to-postgresql --from FILE --to postgresql://…",
              file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(migrate_to_postgresql(config, Path(source), arguments.target))


def init(arguments: argparse.Namespace) -> int:
    from bot.starter import StarterError, init_site

    if not arguments.argument:
        print("usage: alerte-bot init DIR --departement NN [--departement NN …]",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        written = init_site(Path(arguments.argument), arguments.departement,
                            arguments.database, arguments.force)
    except StarterError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"starter configuration written: {written}")
    print(f"next: edit its roles and platforms, then: alerte-bot --config {written} check")
    return 0


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    logs.configure(arguments.verbose)
    try:
        if arguments.command == "init":
            return init(arguments)
        config_file = config_path(arguments)
        config = load_config(config_file)
        logs.configure(arguments.verbose, logs.secrets_of(config))
        return dispatch(arguments, config, config_file)
    except (ConfigError, GeoDataError, DatabaseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def entry_point() -> None:
    """The ``alerte-bot`` console script."""
    sys.exit(main(sys.argv[1:]))
