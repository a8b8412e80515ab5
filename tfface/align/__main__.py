"""`python -m tfface.align SRC DST --image_size 112`: see `tfface.align.align_folder`."""

import sys

from tfface.align.align_folder import main

if __name__ == "__main__":
    sys.exit(main())
