"""adjit's version: one place, read by pyproject.toml (setuptools' attr:) and the disk-cache key."""
__version__ = "0.1.0"
