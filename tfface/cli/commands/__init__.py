"""The `tfface` subcommands, one module each; `COMMANDS` is the order `tfface --help` lists
them in. A new command is a module here with a `COMMAND = Command(...)` (see
`tfface.cli.command`) and one line below."""

from tfface.cli.commands import calibrate
from tfface.cli.commands import cluster
from tfface.cli.commands import detect
from tfface.cli.commands import embed
from tfface.cli.commands import enroll
from tfface.cli.commands import gallery
from tfface.cli.commands import identify
from tfface.cli.commands import verify

COMMANDS = tuple(
    module.COMMAND
    for module in (detect, embed, verify, enroll, identify, calibrate, cluster, gallery)
)

__all__ = ["COMMANDS"]
