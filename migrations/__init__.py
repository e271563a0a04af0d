"""The database migrations, numbered 0001, 0002, … and applied in order at start-up.

This folder ships inside the package as ``bot.migrations`` (pyproject.toml) and is read with
``importlib.resources`` (``bot.resources``), so an installed bot finds them wherever it runs.
"""
