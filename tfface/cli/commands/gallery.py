"""`tfface gallery list|stats|remove|rename --gallery G`: inspect or edit a gallery.

Needs no model and no TensorFlow (the gallery's rows are read and edited through its
store), so it answers in a fraction of a second.
"""

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.command import CommandError

ACTIONS = {
    "list": "enrolled people and their number of embeddings",
    "stats": "size, model and backend",
    "remove": "remove people",
    "rename": "rename a person",
}


def add_arguments(parser):
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in ACTIONS.items():
        action = actions.add_parser(name, help=text, formatter_class=arguments.Formatter)
        arguments.add_output(action)
        arguments.add_gallery(action)
        if name == "remove":
            action.add_argument("names", nargs="+", help="people to remove")
        elif name == "rename":
            action.add_argument("old", help="current name")
            action.add_argument("new", help="new name")


def check(args):
    arguments.check_gallery(args.gallery, must_exist=True)


def _list(args, gallery):
    people = gallery.identities()
    payload = {
        "gallery": args.gallery,
        "people": [{"name": n, "embeddings": c} for n, c in people],
    }
    lines = output.table(people, ["name", "embeddings"])
    lines.append(f"{len(people)} people, {sum(c for _, c in people)} embeddings.")
    return payload, lines


def _stats(args, gallery):
    payload = gallery.stats()
    return payload, [f"{k}: {v}" for k, v in payload.items()]


def _remove(args, gallery):
    known = {n for n, _ in gallery.identities()}
    missing = [n for n in args.names if n not in known]
    if missing:
        raise CommandError(f"not in {args.gallery}: {missing}")
    removed = {n: gallery.remove(n) for n in args.names}
    payload = {"gallery": args.gallery, "removed": removed}
    return payload, [f"removed {n} ({c} embeddings)" for n, c in removed.items()]


def _rename(args, gallery):
    gallery.rename(args.old, args.new)
    payload = {"gallery": args.gallery, "renamed": {args.old: args.new}}
    return payload, [f"renamed {args.old} to {args.new}"]


def run(args, plan):
    from tfface.gallery import Gallery

    action = {"list": _list, "stats": _stats, "remove": _remove, "rename": _rename}[args.action]
    with Gallery.open(args.gallery, create=False) as gallery:
        payload, lines = action(args, gallery)
    output.emit(args, payload, lines)
    return EXIT_OK


COMMAND = Command(
    name="gallery",
    help="list, inspect or edit a gallery",
    add_arguments=add_arguments,
    check=check,
    run=run,
    needs_tensorflow=False,
)
