"""`python -m tfface COMMAND ...`: see `tfface/cli/main.py`."""

import os
import sys

# Before anything imports TensorFlow: keep its C++ start-up chatter off the user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tfface.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
