"""tfface.cli: the `python -m tfface` / `tfface` command line.

`main.py` parses and dispatches; each command is a module of `commands/` declaring its
arguments, its checks (run before TensorFlow loads) and its work (`command.Command`), on a
small shared core: `arguments` (shared flags and their checks), `output` (tables, JSON,
skipped files, progress), `photos` (the Recognizer from the flags and the photo loop),
`draw` (`--draw`) and `image_files` (which files a run reads).
"""

from tfface.cli.main import main

__all__ = ["main"]
