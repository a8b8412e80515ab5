"""`python -m tfface.eval`: see `tfface.eval.cli`."""

import sys

from tfface.eval import cli

if __name__ == "__main__":
    sys.exit(cli.main())
