"""The `continuity` command: thin commands that parse, call the engine and print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from continuity import __version__
from continuity.cli.common import STATE

app = typer.Typer(
    name="continuity",
    help=(
        "Keep your support team reachable when a channel fails or a surge hits.\n\n"
        "Declare an outage (`continuity outage phone --reason ... --eta 2h`) and its playbook runs: staff get "
        "the runbook, customers get a notice in their language saying what broke, for how long and where to "
        "reach you instead; banners and social posts follow if it drags on. `continuity restore phone` switches "
        "everything off again. `continuity status` shows what is on right now."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"continuity {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    config: Annotated[Path, typer.Option("--config", "-c", envvar="CONTINUITY_CONFIG",
                                         help="Config file (env CONTINUITY_CONFIG).")] = Path("continuity.yaml"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for internal errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    STATE.config_path = config
    STATE.debug = debug


# Commands register on `app` in the order --help lists them: the 3am ones first.
from continuity.cli import situations, watch, maintenance, campaign, autoreply, setup, drill, user, agent, store, cluster  # noqa: E402, I001, E501

__all__ = ["app", "main", "agent", "autoreply", "campaign", "cluster", "drill", "maintenance", "setup", "situations",
           "store", "user", "watch"]


def main() -> None:
    app()
