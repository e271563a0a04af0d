"""``python -m bot …``: the same command line as ``alerte-bot`` (bot/cli.py)."""

from bot.cli import entry_point

entry_point()
