#!/usr/bin/env python3
"""Start the alert bot from a checkout of the repository: the same command line as the
installed ``alerte-bot`` and ``python -m bot`` (bot/cli.py)."""

from __future__ import annotations

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
