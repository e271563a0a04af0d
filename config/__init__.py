"""Configuration files and the default data the bot ships with.

This folder ships inside the package as ``bot.defaults`` (pyproject.toml): the commented
reference ``base-config.yaml`` (the template of ``alerte-bot init``), the demo configuration,
the categories, the communities and the prebuilt commune layers (``geo/``). A configuration
names a shipped file as ``bundled:NAME`` (``bot.resources.bundled``).
"""
