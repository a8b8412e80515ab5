"""tfface.cli: the `python -m tfface` / `tfface` command line (see `tfface/cli/main.py`)."""

from tfface.cli.main import main

__all__ = ["main"]
