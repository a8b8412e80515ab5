"""The command table: every command declares its arguments, checks and work, `main` only
dispatches, and a new command is one module plus one line (issue 17 adds `calibrate` and
`cluster` this way)."""

import importlib

import pytest

from tfface.cli.command import EXIT_FAILURE
from tfface.cli.command import EXIT_OK
from tfface.cli.command import EXIT_USAGE
from tfface.cli.command import Command
from tfface.cli.command import CommandError
from tfface.cli.commands import COMMANDS
from tfface.cli.image_files import InputError

# The module (`tfface.cli.main` the attribute is the function `tfface.cli` exports).
cli_main = importlib.import_module("tfface.cli.main")


def test_every_command_is_declared_once_and_parses():
    names = [c.name for c in COMMANDS]
    assert names == [
        "detect",
        "embed",
        "verify",
        "enroll",
        "identify",
        "calibrate",
        "cluster",
        "gallery",
    ]
    parser = cli_main.build_parser()
    for command in COMMANDS:
        assert callable(command.add_arguments) and callable(command.check)
        assert callable(command.run)
        with pytest.raises(SystemExit) as info:
            parser.parse_args([command.name, "--help"])
        assert info.value.code == 0
    assert [c.name for c in COMMANDS if not c.needs_tensorflow] == ["gallery"]


def _echo(calls):
    def add_arguments(parser):
        parser.add_argument("what", choices=("ok", "bad", "fail"))
        parser.add_argument("--json", action="store_true")

    def check(args):
        if args.what == "bad":
            raise InputError("what: bad. Received: bad")
        return {"planned": args.what}

    def run(args, plan):
        calls.append(plan)
        if args.what == "fail":
            raise CommandError("nothing done")
        return EXIT_OK

    return Command("echo", "a test command", add_arguments, check, run, needs_tensorflow=False)


def test_a_new_command_is_one_declaration(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli_main, "COMMANDS", (*COMMANDS, _echo(calls)))
    assert cli_main.main(["echo", "ok"]) == EXIT_OK
    assert calls == [{"planned": "ok"}]  # run gets what check planned
    assert cli_main.main(["echo", "bad"]) == EXIT_USAGE
    assert "tfface echo: error: what: bad" in capsys.readouterr().err
    assert len(calls) == 1, "a bad argument never reaches run"
    assert cli_main.main(["echo", "fail"]) == EXIT_FAILURE
    assert capsys.readouterr().err.strip() == "tfface echo: error: nothing done"
