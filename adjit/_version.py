"""adjit's version: one place, read by pyproject.toml (setuptools' attr:) and `adjit.__version__`."""
__version__ = "0.1.0"
