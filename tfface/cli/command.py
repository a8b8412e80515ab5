"""`Command`: what one `tfface` subcommand declares, and the exit statuses they all share.

A command lives in its own module under `tfface/cli/commands/` and declares, in a
module-level `COMMAND = Command(...)`:
- `add_arguments(parser)`: its flags and positional arguments (shared ones come from
  `tfface.cli.arguments`);
- `check(args)`: checks the arguments and the paths they name *without TensorFlow* and
  returns the plan `run` works from (e.g. the image files a folder holds); a bad argument
  raises `InputError` or `ModelLoadError`, which `main` turns into exit status 2 before
  TensorFlow loads;
- `run(args, plan)`: the work; prints a table or JSON (`tfface.cli.output`) and returns
  `EXIT_OK`, or raises `CommandError` (exit 1) after printing what it did report.
Listing the module in `tfface.cli.commands.COMMANDS` puts it on the command line.

Exit statuses:
- 0 (`EXIT_OK`): the command did its work (skipped files, if any, are listed and counted).
- 1 (`EXIT_FAILURE`): a failure while working, or nothing done: no input image could be
  read, no face was found to embed or enrol, a face is missing in a `verify` photo, the
  gallery was built by another model, a name to remove is not in the gallery.
- 2 (`EXIT_USAGE`): a bad flag, argument or path, reported before TensorFlow loads (or,
  for what only the work can count, such as too few faces for a target rate, once
  counted: `run` raises `InputError`).
- 130 (`EXIT_INTERRUPTED`): Ctrl-C. `main` prints one line instead of a traceback; a
  command that keeps partial work raises `CommandInterrupted` saying what it kept.
"""

import dataclasses
import typing

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


class CommandError(Exception):
    """A command failed, or did nothing, while working: `main` prints `tfface COMMAND:
    error: MESSAGE` on stderr and exits 1."""


class CommandInterrupted(Exception):
    """Ctrl-C stopped a command that kept part of its work: `main` prints `tfface COMMAND:
    interrupted: MESSAGE` (what was kept, what is left) and exits 130."""


@dataclasses.dataclass(frozen=True)
class Command:
    """One subcommand; see the module docstring.

    Attributes:
        name: the word on the command line (`tfface NAME ...`).
        help: one line for `tfface --help`.
        add_arguments: callable(parser) that adds the command's arguments.
        check: callable(args) -> plan; no TensorFlow.
        run: callable(args, plan) -> exit status.
        needs_tensorflow: False for a command that never loads a model (`gallery`): main
            then never imports TensorFlow for it.
    """

    name: str
    help: str
    add_arguments: typing.Callable
    check: typing.Callable
    run: typing.Callable
    needs_tensorflow: bool = True
