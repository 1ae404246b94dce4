"""`python -m adjit ...` runs the `adjit` command (see adjit/cli/__init__.py)."""
import sys

from .cli import main

sys.exit(main())
