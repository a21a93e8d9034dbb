"""daemon and check: watching channels' health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from continuity.cli import app
from continuity.cli.common import console, esc, guarded, load, print_json, store_for
from continuity.errors import ExitCode, InputError

if TYPE_CHECKING:
    from continuity.probes.surge import SurgeCheck


@app.command()
@guarded
def daemon(
    bind: Annotated[str | None, typer.Option("--bind", help="HTTP endpoint address (default from the config, "
                                             "127.0.0.1:8765).")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (one line per event).")] = "text",
    node: Annotated[str | None, typer.Option("--node", help="This daemon's name in a cluster of daemons on one "
                                             "PostgreSQL store (default `daemon.node`, else the host name); "
                                             "see `continuity cluster`.")] = None,
) -> None:
    """Watch every channel and run every playbook step on time, until stopped.

    Probes each channel with health checks on its schedule; when one fails `fail_after` times in a row the
    outage opens by itself (customers get the notice, staff the runbook), and when it passes again the outage
    closes and everything is switched off. Steps (banners, posts, reminders) run at their exact due times,
    also after a restart. Serves /healthz and /metrics. Stop with SIGTERM or Ctrl-C.
    """
    import asyncio

    from continuity import logs
    from continuity.clock import SystemClock
    from continuity.daemon.service import Daemon

    if log_format not in ("text", "json"):
        raise InputError(f"--log-format {log_format!r}: expected text or json")
    loaded = load()
    if node is not None:
        import re

        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", node):
            raise InputError(f"--node {node!r}: expected a name of lower-case letters, digits, - and _ "
                             "(at most 64), e.g. cloud-1")
    if bind is not None:
        from continuity.config.models import Daemon as DaemonConfig

        try:
            DaemonConfig(bind=bind)
        except ValueError:
            raise InputError(f"--bind {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8765") from None
    store = store_for(loaded)
    log = logs.setup(log_format)
    service = Daemon(loaded, store, SystemClock(), log, bind=bind, node=node)
    try:
        asyncio.run(service.run())
    except OSError as exc:
        raise InputError(f"cannot serve on {service.bind}: {exc.strerror or exc}") from None
    finally:
        store.close()


@app.command()
@guarded
def check(
    channel: Annotated[str | None, typer.Argument(help="Only this channel (default: every channel with probes).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Run every channel's health checks once and show state, latency and reason.

    Exits 1 when any channel is down. Opens no outage and changes nothing: the daemon does that.
    """
    import asyncio

    from continuity.checks import ChannelCheck, ProbeSet
    from continuity.clock import SystemClock

    loaded = load()
    if channel is not None:
        if channel not in loaded.config.channels:
            raise InputError(f"unknown channel {channel!r}; configured channels: {', '.join(loaded.config.channels)}")
        if channel not in loaded.probes and channel not in loaded.surge_probes:
            raise InputError(f"channel {channel!r} has no health checks (channels.{channel}.health.probes)")
    elif not loaded.probes and not loaded.surge_probes:
        raise InputError("no channel has health checks; add channels.NAME.health.probes to the config")

    from continuity.probes.surge import SurgeReader

    async def run() -> tuple[list[ChannelCheck], list[SurgeCheck]]:
        probes, surges = ProbeSet(loaded, SystemClock()), SurgeReader(loaded, SystemClock())
        try:
            health = [c for c in probes.channels if channel in (None, c)]
            watched = [c for c in surges.channels if channel in (None, c)]
            # Readings of the surge watch (unseen mail, a queue) run beside the health checks.
            checks, readings = await asyncio.gather(probes.check_all(health) if health else _none(),
                                                    surges.read_all(watched) if watched else _none())
            return checks, readings
        finally:
            await probes.aclose()
            await surges.aclose()

    checks, readings = asyncio.run(run())
    if as_json:
        from continuity.quorum import daemon_views, probe_vantages, watched_from_elsewhere

        channels = [c.as_dict() for c in checks]
        for row in channels:  # where each probe runs (this command runs them all, here)
            for probe, where in zip(row["probes"], probe_vantages(loaded, row["channel"]), strict=False):
                probe["vantages"] = where
        extra = {"vantages": daemon_views(loaded)} if watched_from_elsewhere(loaded) else {}
        print_json({"ok": all(c.status != "down" for c in checks), "channels": channels,
                    "surge": [r.as_dict() for r in readings], **extra})
    else:
        from rich.table import Table

        table = Table(title="Channel health", title_justify="left")
        for col in ("channel", "probe", "state", "latency", "reason"):
            table.add_column(col)
        for c in checks:
            colour = {"up": "green", "degraded": "yellow", "down": "bold red"}[c.status]
            table.add_row(f"[bold]{esc(c.channel)}[/]", "", f"[{colour}]{c.status}[/]", f"{c.latency * 1000:.0f} ms",
                          esc(c.reason))
            for r in c.results:
                rc = {"up": "green", "degraded": "yellow", "down": "red"}[r.status]
                table.add_row("", esc(r.probe), f"[{rc}]{r.status}[/]", f"{r.latency * 1000:.0f} ms", esc(r.reason))
        if checks:
            console().print(table)
        if readings:
            console().print(_surge_table(readings))
    if any(c.status == "down" for c in checks):
        raise typer.Exit(int(ExitCode.FAILED))


async def _none() -> list[Any]:
    return []


def _surge_table(readings: list[SurgeCheck]) -> Any:
    """The surge watch's readings: a number against its threshold, per probe (not a health verdict)."""
    from rich.table import Table

    from continuity.probes.volume import format_number

    table = Table(title="Surge watch", title_justify="left")
    for col in ("channel", "probe", "reading", "threshold", "reason"):
        table.add_column(col)
    for c in readings:
        verdict = {True: "[yellow]above[/]", False: "[green]under[/]", None: "[red]unknown[/]"}[c.above]
        table.add_row(f"[bold]{esc(c.channel)}[/]", "", verdict, "", esc(c.reason))
        for r in c.readings:
            colour = "yellow" if r.above else "green"
            table.add_row("", esc(r.probe), f"[{colour}]{esc(format_number(r.value))}[/]",
                          esc(format_number(r.threshold)), esc(r.text))
        for label, why in c.failures:
            table.add_row("", esc(label), "[red]—[/]", "", esc(why))
    return table
