"""`journeys`: the command line of the customer-journey pipeline.

Each command group lives in its own module here and is registered in COMMANDS, so that a
module's import cost (Faust, chdb, Grafana SDK) is paid only by the command that needs it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from pipeline import __version__
from pipeline.cli.common import Group

# name -> "module:attribute"; loaded on first use.
COMMANDS: dict[str, str] = {
    "config": "pipeline.cli.config:config",
    "kafka": "pipeline.cli.kafka:kafka",
    "migrate": "pipeline.cli.store:migrate",
    "demo": "pipeline.cli.demo:demo",
    "dashboards": "pipeline.cli.dashboards:dashboards",
    "simulate": "pipeline.cli.simulate:simulate_command",
    "report": "pipeline.cli.report:report",
    "calibrate": "pipeline.cli.calibrate:calibrate",
    "rescore": "pipeline.cli.rescore:rescore_command",
    "diff": "pipeline.cli.diff:diff_command",
    "emit": "pipeline.cli.emit:emit",
    "collect": "pipeline.cli.collect:collect",
    "alerts": "pipeline.cli.alerts:alerts",
    "run": "pipeline.cli.run:run",
    "erase": "pipeline.cli.erase:erase",
}


class LazyGroup(Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="journeys")
def cli() -> None:
    """Customer-journey event pipeline: touchpoints in, whole-journey experience scores out."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="journeys", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
