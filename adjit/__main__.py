"""`python -m adjit ...` runs the `adjit` command (see adjit/cli.py)."""
import sys

from .cli import main

sys.exit(main())
