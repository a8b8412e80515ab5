"""tfface.cli: the `python -m tfface` / `tfface` command line (see `tfface/cli/main.py`)."""

__all__ = []
