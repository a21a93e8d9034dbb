"""maintenance add / list / cancel: planned work on a channel, announced ahead, with no false outage."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from continuity.cli import app
from continuity.cli.common import console, engine, esc, guarded, load, local_time, print_json, who
from continuity.durations import parse_eta
from continuity.errors import InputError

maint = typer.Typer(help="Plan maintenance of a channel: customers and staff are told ahead, failures inside the "
                         "window open no outage, and a channel still down when it ends opens a real one.",
                    no_args_is_help=True)
app.add_typer(maint, name="maintenance")


def _local(when: datetime, tz: str) -> str:
    """A window's time as the on-call person reads it: the organisation's local time."""
    return local_time(when, tz)


def _window_dict(w: Any) -> dict[str, Any]:
    return {"id": w.id, "channel": w.channel, "starts_at": w.starts_at.isoformat(), "ends_at": w.ends_at.isoformat(),
            "notice_seconds": w.notice_s, "reason": w.reason, "state": w.state, "situation_id": w.situation_id,
            "created_by": w.created_by}


@maint.command("add")
@guarded
def add(
    channel: Annotated[str, typer.Argument(help="The channel under maintenance.")],
    start: Annotated[str, typer.Option("--start", help="When it starts: ISO time (local to the organisation if "
                                                       "no offset), 14:30, or a delay like 2h.")],
    end: Annotated[str, typer.Option("--end", help="When it ends (same forms).")],
    reason: Annotated[str, typer.Option("--reason", "-r",
                                        help="What is being done (staff see it; at most 500 characters).")],
    notice: Annotated[str, typer.Option("--notice", help="Tell customers and staff this long before the start, "
                                                         "e.g. 1d (default: at the start).")] = "0s",
    by: Annotated[str | None, typer.Option("--by")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Schedule a maintenance window of CHANNEL.

    At start minus --notice, a customer notice and website banner announce it and staff get a brief; during the
    window, failing health checks of the channel open no outage; at the end everything is switched off, and if
    the channel is still down then, the daemon opens a real outage.
    """
    from continuity.durations import parse_duration
    from continuity.maintenance import add_window

    loaded = load()
    tz = loaded.config.organisation.timezone
    eng = engine(loaded)
    now = eng.clock.now()
    start_at, end_at = parse_eta(start, now, tz, option="--start"), parse_eta(end, now, tz, option="--end")
    if start_at is None or end_at is None:
        raise InputError("--start and --end are required")
    try:
        notice_delta = parse_duration(notice)
    except ValueError as exc:
        raise InputError(f"--notice: {exc}") from None
    window = add_window(eng, channel, start=start_at, end=end_at, reason=reason, notice=notice_delta, by=who(by))
    if as_json:
        print_json({"ok": True, "window": _window_dict(window)})
    else:
        announce = window.starts_at - timedelta(seconds=window.notice_s)
        console().print(f"Maintenance #{window.id} of {channel} scheduled: {_local(window.starts_at, tz)} – "
                        f"{_local(window.ends_at, tz)} ({tz}); staff and customers are told at "
                        f"{_local(announce, tz)}. The daemon (or `continuity tick`) announces and runs it.",
                        markup=False)


@maint.command("list")
@guarded
def list_windows(
    show_all: Annotated[bool, typer.Option("--all", help="Include ended and cancelled windows.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List maintenance windows (scheduled, announced and active; --all for every one)."""
    eng = engine()
    windows = eng.store.maintenance(include_ended=show_all)
    if as_json:
        print_json([_window_dict(w) for w in windows])
        return
    from rich.table import Table

    tz = eng.loaded.config.organisation.timezone
    table = Table(title=f"Maintenance windows ({esc(tz)})", title_justify="left")
    for col in ("id", "channel", "start", "end", "state", "reason"):
        table.add_column(col)
    for w in windows:
        table.add_row(str(w.id), esc(w.channel), _local(w.starts_at, tz), _local(w.ends_at, tz), esc(w.state),
                      esc(w.reason[:60]))
    console().print(table)


@maint.command("cancel")
@guarded
def cancel(
    window_id: Annotated[int, typer.Argument(metavar="ID", help="Window number (see maintenance list).")],
    by: Annotated[str | None, typer.Option("--by")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cancel a maintenance window; if it was already announced, its notices are switched off."""
    from continuity.maintenance import cancel_window

    eng = engine()
    window = cancel_window(eng, window_id, who(by))
    results = eng.run_due([window.situation_id]) if window.situation_id else []
    if as_json:
        print_json({"ok": True, "window": _window_dict(window), "ran": [r.as_dict() for r in results]})
    else:
        console().print(f"Maintenance #{window.id} of {window.channel} cancelled.", markup=False)
