"""``check``: the pre-flight check a prefecture's IT runs before starting the service.

The configuration has been validated by ``load_config`` already; this connects to what
it names (the database, Telegram, Matrix) and prints one line per fact, marked ok,
warning or PROBLEM (``bot/check_report.py``), then a summary. Exit status 1 if any line
is a PROBLEM, else 0. Nothing is changed: the database is read, never migrated; nothing
is sent; a password login is logged out again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bot.check_database import check_database
from bot.check_matrix import check_matrix
from bot.check_report import CheckFailed, Finding, Level, Section, plural, scrub
from bot.check_telegram import check_telegram
from bot.config import Config
from bot.logs import secrets_of
from bot.main import enabled_platforms

PlatformCheck = Callable[[Config, Section, list[str]], Awaitable[None]]
PLATFORM_CHECKS: dict[str, PlatformCheck] = {"telegram": check_telegram, "matrix": check_matrix}


async def run_checks(config: Config, out: TextIO = sys.stdout, *,
                     config_file: Path | None = None) -> int:
    """Check everything ``config`` names, print the findings to ``out``; 1 if any problem.
    ``config_file`` only names the file in the first line."""
    platforms = [name for name in ("telegram", "matrix") if getattr(config, name).enabled]
    # Independent checks run side by side: an unreachable server costs its timeout once.
    checked = await asyncio.gather(check_database(config),
                                   *(_platform(config, name) for name in platforms))
    sections = [_configuration(config, config_file, platforms), *checked, _console(config)]
    findings = [finding for section in sections for finding in section.findings]
    secrets = secrets_of(config)
    for finding in findings:
        print(scrub(finding.line(), secrets), file=out)
    print(_summary(findings), file=out)
    return 1 if any(finding.level is Level.PROBLEM for finding in findings) else 0


async def _platform(config: Config, name: str) -> Section:
    found = Section(name)
    try:
        await PLATFORM_CHECKS[name](config, found, _officers_channels(config, besides=name))
    except CheckFailed as failure:
        found.problem(str(failure))
    except Exception as error:  # the check must end in its report, never in a traceback
        found.problem(f"the check itself failed: {type(error).__name__}: {error}")
    return found


def _officers_channels(config: Config, besides: str) -> list[str]:
    """The other enabled platforms where approval requests reach officers."""
    channels = []
    if config.telegram.enabled and config.telegram.officers_chat_id is not None:
        channels.append("telegram")
    if config.matrix.enabled and config.matrix.officers_room:
        channels.append("matrix")
    return [name for name in channels if name != besides]


def _configuration(config: Config, config_file: Path | None, platforms: list[str]) -> Section:
    found = Section("configuration")
    enabled = f"{', '.join(platforms)} enabled" if platforms else "no platform enabled"
    source = f"{config_file} " if config_file is not None else ""
    found.ok(f"{source}valid ({enabled}; database {config.database})")
    if not config.roles.officers:
        # Roles can also be granted at run time (/role), so this is not fatal.
        found.warning("roles.officers is empty: nobody may approve an alert until an admin "
                      "grants the role with /role")
    return found


def _console(config: Config) -> Section:
    found = Section("console")
    started = enabled_platforms(config, console=False)
    if "console" not in started:
        if config.console.enabled:
            found.ok(f"console.enabled is true, but beside {' and '.join(started)} the console "
                     "starts only with --console; nothing to check")
    elif started == ["console"]:
        found.warning("no platform enabled: the bot would only talk in its own terminal "
                      "(enable telegram or matrix for the service)")
    else:
        found.warning("enabled: whoever has the bot's terminal can type in it; on a "
                      "production server set console.enabled: false")
    return found


def _summary(findings: list[Finding]) -> str:
    problems = sum(finding.level is Level.PROBLEM for finding in findings)
    warnings = sum(finding.level is Level.WARNING for finding in findings)
    if problems:
        return (f"{plural(problems, 'problem')}, {plural(warnings, 'warning')}: fix the "
                "PROBLEM lines before starting the service")
    return f"no problem, {plural(warnings, 'warning')}: ready to start"
