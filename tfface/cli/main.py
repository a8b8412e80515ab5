"""`python -m tfface` / `tfface`: recognise people from the command line.

    tfface detect photo.jpg --draw faces.png
    tfface embed photos/ --output embeddings.npz
    tfface verify a.jpg b.jpg
    tfface enroll --gallery people.gallery people/            # people/<name>/<images>
    tfface enroll --gallery people.gallery --name "Ada" ada1.jpg ada2.jpg
    tfface identify --gallery people.gallery group.jpg --draw group_named.png
    tfface cluster photos/ --output people/                   # person_001/ ... unclustered/
    tfface gallery list --gallery people.gallery

Exit status: 0 the command did its work; 1 a failure while working, or nothing done (no
input image could be read, no face found to embed or enrol); 2 a bad argument; 130
interrupted (Ctrl-C: one line, no traceback; `enroll` keeps what it enrolled).

Arguments, input paths, the `--model` path and the gallery path are checked before
TensorFlow is imported: a bad one exits with status 2 at once and names the argument or the
file. A failure while working (no face in a `verify` input, a gallery built by another
model) exits 1, and so does a run that did nothing: no input image could be read, or no
face was found to embed or enrol. Runs over many files report and skip unreadable images
and images without a face (counted in the summary) instead of stopping; a person of an
`enroll` tree without a usable face is named as not enrolled. `gallery` needs no
TensorFlow at all.

Each command is a module of `tfface/cli/commands/` declaring its arguments, its checks
and its work (`tfface.cli.command.Command`); this module only parses and dispatches.
"""

import argparse
import os
import sys

from tfface.cli.arguments import Formatter
from tfface.cli.command import EXIT_FAILURE
from tfface.cli.command import EXIT_INTERRUPTED
from tfface.cli.command import EXIT_USAGE
from tfface.cli.command import CommandError
from tfface.cli.command import CommandInterrupted
from tfface.cli.commands import COMMANDS
from tfface.cli.image_files import InputError
from tfface.recognition.model_source import ModelLoadError


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfface",
        description="Detect, embed, verify and identify faces; manage a gallery of people.",
        formatter_class=Formatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:3]),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(
            sub.add_parser(command.name, help=command.help, formatter_class=Formatter)
        )
    return parser


def _failure_types():
    # What a command's work may raise that is the input's fault, not a bug: reported in
    # one line (exit 1). Imported after the checks: the recognition errors need numpy/PIL.
    from tfface.gallery.model_info import GalleryError
    from tfface.recognition.face import MultipleFacesError
    from tfface.recognition.face import NoFaceError
    from tfface.recognition.image_input import ImageInputError

    return (CommandError, GalleryError, NoFaceError, MultipleFacesError, ImageInputError)


def main(argv=None):
    args = build_parser().parse_args(argv)  # exits 2 on a malformed command line
    command = next(c for c in COMMANDS if c.name == args.command)
    # A command with actions (`gallery list`) names the action too.
    prefix = " ".join(["tfface", args.command, *filter(None, [getattr(args, "action", None)])])
    prefix += ": error:"
    try:
        plan = command.check(args)
    except (InputError, ModelLoadError) as e:
        print(f"{prefix} {e}", file=sys.stderr)
        return EXIT_USAGE
    if command.needs_tensorflow:
        # Before the first TensorFlow import, which drops TF's C++ start-up notices.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from tfface import _startup

        _startup.import_tensorflow()
    try:
        return command.run(args, plan)
    except ModelLoadError as e:
        print(f"{prefix} --model {e}", file=sys.stderr)
        return EXIT_USAGE
    except InputError as e:  # what only the work could count (faces found) was too little
        print(f"{prefix} {e}", file=sys.stderr)
        return EXIT_USAGE
    except CommandInterrupted as e:
        print(f"{prefix.removesuffix(' error:')} interrupted: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"{prefix.removesuffix(' error:')} interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _failure_types() as e:
        print(f"{prefix} {e}", file=sys.stderr)
        return EXIT_FAILURE
