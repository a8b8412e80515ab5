"""`python -m tfface.data`: see `tfface/data/cli.py`."""

import sys

from tfface.data.cli import main

if __name__ == "__main__":
    sys.exit(main())
