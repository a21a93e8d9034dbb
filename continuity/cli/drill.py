"""drill: rehearse a playbook end to end without touching customers or the real ledger."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from continuity.cli import app
from continuity.cli.common import clock, console, esc, guarded, load, print_json
from continuity.errors import InputError


@app.command()
@guarded
def drill(
    channel: Annotated[str, typer.Argument(help="The channel whose outage to rehearse.")],
    speed: Annotated[float, typer.Option("--speed", help="Time compression: 60 plays an hour in a minute; "
                                                         "0 (default) prints the whole timeline at once.")] = 0,
    duration: Annotated[str | None, typer.Option("--duration", help="How long the rehearsed outage lasts "
                                                 "(default: long enough for every step and two reminders).")] = None,
    playbook: Annotated[str | None, typer.Option("--playbook", help="Rehearse another playbook (plan B).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="The reason the rehearsed messages quote.")] = \
        "Drill: rehearsal of the outage playbook",
    eta: Annotated[str | None, typer.Option("--eta", help="ETA to rehearse with, e.g. 2h.")] = "2h",
    outbox: Annotated[Path | None, typer.Option("--outbox", help="Folder for the drill's messages and ledger "
                                                "(default: a new temporary folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable timeline on stdout.")] = False,
) -> None:
    """Rehearse CHANNEL's outage playbook end to end, safely.

    Prints the timeline the team would live through (every offset compressed) and writes every message into a
    private outbox. No customer, no real sink and no real ledger is touched. Use --playbook for plan B.
    """
    from continuity.config.loader import load_playbook
    from continuity.drill import format_line, run_drill
    from continuity.durations import parse_duration

    loaded = load()
    if channel not in loaded.config.channels:
        raise InputError(f"unknown channel {channel!r}; configured channels: {', '.join(loaded.config.channels)}")
    if speed < 0:
        raise InputError("--speed must be 0 or more")
    if playbook and playbook not in loaded.playbooks:
        loaded.playbooks[playbook], loaded.documents[playbook] = load_playbook(playbook, loaded.playbook_dirs)
    try:
        span = parse_duration(duration) if duration else None
        eta_delta = parse_duration(eta) if eta else None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    directory = outbox or Path(tempfile.mkdtemp(prefix="continuity-drill-"))
    out = console()
    if not as_json:
        out.print(f"[bold]Drill: outage of {esc(channel)}[/] — messages go to {esc(directory)}/outbox only\n")
    result = run_drill(loaded, channel, directory, start=clock().now(), speed=speed, duration=span,
                       reason=reason, eta=eta_delta, playbook=playbook,
                       emit=(lambda line: None) if as_json else (lambda line: out.print(format_line(line),
                                                                                        markup=False)))
    if as_json:
        print_json({"directory": str(directory), "lines": [
            {"offset_seconds": int(line.offset.total_seconds()), "step": line.step, "action": line.action,
             "sink": line.sink, "state": line.state, "file": line.text} for line in result.lines]})
    else:
        out.print(f"\n{len(result.lines)} actions rehearsed. Read them in {directory}/outbox.", markup=False)
