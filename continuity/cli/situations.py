"""outage, restore, status, tick, history, report, settle: what on-call staff run."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from continuity import limits
from continuity.cli import app
from continuity.cli.common import (
    clock,
    console,
    engine,
    err_console,
    esc,
    guarded,
    load,
    local_time,
    print_json,
    who,
    zone_name,
)
from continuity.durations import parse_eta
from continuity.errors import ExitCode, InputError

JSON = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def _local(dt: str | None, tz: str, *, named: bool = False) -> str:
    """`named`: with the zone's name when this machine is in another zone (see local_time)."""
    return local_time(datetime.fromisoformat(dt), tz, named=named) if dt else "—"


def _results_table(results: list[Any], title: str) -> None:
    from rich.table import Table

    if not results:
        return
    table = Table(title=esc(title), title_justify="left")
    for col in ("step", "action", "sink", "state"):
        table.add_column(col)
    # An outbox path or an error shown whole, wrapped on a narrow terminal: never cut in the middle.
    table.add_column("detail", overflow="fold")
    for r in results:
        style = {"done": "green", "failed": "bold red", "uncertain": "bold yellow"}.get(r.state, "")
        table.add_row(esc(r.row.step_id), esc(r.row.action) if r.row.phase != "undo" else "switch off",
                      esc(r.row.sink), f"[{style}]{esc(r.state)}[/]" if style else esc(r.state),
                      esc(r.detail or ""))
    console().print(table)


def _exit_for(results: list[Any]) -> None:
    if any(r.state in ("failed", "uncertain") for r in results):
        raise typer.Exit(int(ExitCode.FAILED))


@app.command()
@guarded
def outage(
    channel: Annotated[str, typer.Argument(help="The channel that failed: phone, email, chat, internet, …")],
    reason: Annotated[str, typer.Option("--reason", "-r",
                                        help="What broke, in one sentence (at most 500 characters), for STAFF: "
                                             "their messages quote it; customers never read it unless "
                                             "--public-reason.")],
    eta: Annotated[str | None, typer.Option("--eta", help="Expected recovery: 2h, 90m, 14:30 or an ISO time; "
                                                          "never in the past.")] = None,
    cause: Annotated[str | None, typer.Option("--cause", "-c",
                                              help="What CUSTOMERS read about why, as a prepared sentence in "
                                                   "their language: provider, power, network, hardware, "
                                                   "software, maintenance, unknown (or a key of "
                                                   "organisation.causes). Default: unknown; asked for at a "
                                                   "terminal.")] = None,
    public_reason: Annotated[bool, typer.Option("--public-reason",
                                                help="Also show --reason to customers, but only in messages "
                                                     "and pages of the language it is written in "
                                                     "(--reason-locale).")] = False,
    reason_locale: Annotated[str | None, typer.Option("--reason-locale",
                                                      help="The language --reason is written in (default: the "
                                                           "organisation's default locale).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who declares it (default: your user name).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Show every action that would run; touch nothing.")] = False,
    as_json: JSON = False,
) -> None:
    """Declare CHANNEL down and start its playbook.

    Right away: staff get the runbook (where to move, what to say) and customers get a notice on the
    fallback channels saying what broke, the ETA, where to reach you instead and that answers take longer
    there. Later steps (website banner, social post, reminders) run at their times via `continuity tick` or
    the daemon. Running it again for an open outage updates reason and ETA instead of opening a second one;
    customers are re-told only when the ETA changes.
    """
    loaded = load()
    clk = clock()
    now = clk.now()
    eta_at = checked_eta(eta, now, loaded.config.organisation.timezone)
    if channel not in loaded.config.channels:
        raise InputError(f"unknown channel {channel!r}; configured channels: {', '.join(loaded.config.channels)}")
    if not reason.strip():
        raise InputError("--reason must say what broke")
    told = customer_fields(loaded, cause, public_reason, reason_locale, ask=not (dry_run or as_json))
    limits.check_length("--reason", reason, limits.REASON)
    limits.check_length("--by", by, limits.BY)
    if dry_run:
        from continuity.preview import preview_open

        preview = preview_open(loaded, channel, reason=reason, eta=eta_at, by=who(by), now=now, data=told)
        if as_json:
            print_json({"dry_run": True, **preview.as_dict()})
            return
        _print_preview(preview.actions, f"Dry run: {preview.headline} (nothing was sent or stored)")
        if preview.cause:
            out = console()
            out.print("Customers read as the cause:", markup=False)
            for locale, words in preview.cause.items():
                out.print(f"  {locale}: {words}", markup=False, soft_wrap=True)
        return
    eng = engine(loaded)
    result = eng.open(channel, reason=reason, eta=eta_at, by=who(by), data=told)
    results = eng.run_due([result.situation.id])
    sit = eng.store.get_situation(result.situation.id)
    assert sit is not None
    if as_json:
        from continuity.views import situation_dict

        print_json({"ok": not any(r.state in ("failed", "uncertain") for r in results),
                    "created": result.created, "eta_changed": result.eta_changed,
                    "situation": situation_dict(sit, eng.store.steps_for(sit.id), clk.now()),
                    "ran": [r.as_dict() for r in results]})
    else:
        out = console()
        tz = loaded.config.organisation.timezone
        if result.created:
            out.print(f"[bold]Outage #{sit.id} of {esc(channel)} opened[/]: {esc(sit.reason)}")
        else:
            what = "ETA changed, customers re-told" if result.eta_changed else "updated (customers not re-told)"
            out.print(f"[bold]Outage #{sit.id} of {esc(channel)} was already open[/]: {what}")
        out.print(f"ETA: {_local(sit.eta.isoformat() if sit.eta else None, tz, named=True)}")
        _results_table(results, "Ran now")
        later = [r for r in eng.store.steps_for(sit.id) if r.state == "planned"]
        if later:
            out.print("Next: " + ", ".join(f"{r.step_id} at {_local(r.due_at.isoformat(), tz, named=True)}"
                                           for r in later[:6]), markup=False)
            out.print("[dim]Later steps run with `continuity tick` (cron) or `continuity daemon`.[/]")
    _exit_for(results)


def _at_terminal() -> bool:
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


def checked_eta(text: str | None, now: datetime, tz: str) -> datetime | None:
    """The ETA as given, refused when it is already over; a bare time that has passed today (`14:30` at
    15:00) is never silently taken for tomorrow: at a terminal the person confirms it, elsewhere it is
    refused with the date to give instead."""
    from datetime import time as clock_time
    from zoneinfo import ZoneInfo

    from continuity.durations import parse_duration

    eta_at = parse_eta(text, now, tz)
    if eta_at is None or text is None:
        return None
    local_eta, local_now = eta_at.astimezone(ZoneInfo(tz)), now.astimezone(ZoneInfo(tz))
    if eta_at <= now:
        raise InputError(f"--eta {text!r} is in the past ({local_eta:%Y-%m-%d %H:%M} {tz}, now "
                         f"{local_now:%Y-%m-%d %H:%M}): give the time the channel is expected back")
    try:
        parse_duration(text)
        return eta_at
    except ValueError:
        pass
    try:
        clock_time.fromisoformat(text)
    except ValueError:
        return eta_at  # a full date-time: meant as written
    if local_eta.date() == local_now.date():
        return eta_at
    question = f"{text} has passed today ({local_now:%H:%M} now): did you mean tomorrow {local_eta:%Y-%m-%d %H:%M}?"
    if _at_terminal():
        if typer.confirm(question, default=False, err=True):
            return eta_at
        raise InputError(f"--eta {text!r}: not confirmed; nothing was changed")
    raise InputError(f"--eta {text!r} has passed today ({local_now:%H:%M} now, {tz}); for tomorrow give the "
                     f"date too: --eta {local_eta:%Y-%m-%dT%H:%M}")


def customer_fields(loaded: Any, cause: str | None, public_reason: bool, reason_locale: str | None, *,
                    ask: bool) -> dict[str, Any]:
    """What customers are told about why (situation data): a prepared cause key, and whether the staff's
    reason may be shown, in which language. Bad keys are refused by name, nothing changed."""
    from continuity.variables import DEFAULT_CAUSE, cause_catalog

    catalog = cause_catalog(loaded)
    org = loaded.config.organisation
    if cause is None and ask and _at_terminal():
        cause = typer.prompt(f"What do customers read as the cause? ({', '.join(catalog)})",
                             default=DEFAULT_CAUSE, err=True).strip()
    if cause is not None and cause not in catalog:
        raise InputError(f"--cause {cause!r}: unknown cause; known: {', '.join(catalog)} "
                         "(add one under organisation.causes)")
    if reason_locale is not None and reason_locale not in org.locales:
        raise InputError(f"--reason-locale {reason_locale!r}: not one of organisation.locales "
                         f"({', '.join(org.locales)})")
    # Only what was said: running `outage` again to move the ETA keeps the cause chosen before. The staff's
    # words stay published only while the person keeps saying so.
    out: dict[str, Any] = {"public_reason": public_reason}
    if cause:
        out["cause"] = cause
    if public_reason:
        out["reason_locale"] = reason_locale or org.default_locale
    return out


def _print_preview(plan: list[dict[str, Any]], title: str) -> None:
    from rich.table import Table

    if not plan:  # an outage already open and nothing new to do: say so, not an empty table
        console().print(title, markup=False)
        return
    table = Table(title=esc(title), title_justify="left", show_lines=True)
    for col in ("when", "action", "to", "sink", "text"):
        table.add_column(col, overflow="fold")
    for p in plan:
        table.add_row(*(esc(p[key]) for key in ("when", "action", "to", "sink", "preview")))
    console().print(table)


@app.command()
@guarded
def restore(
    channel: Annotated[str, typer.Argument(help="The channel that works again.")],
    note: Annotated[str | None, typer.Option("--note", "-n",
                                             help="What fixed it (staff see this; at most 1000 characters).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who restores it (default: your user name).")] = None,
    as_json: JSON = False,
) -> None:
    """Declare CHANNEL working again and switch off everything its outage switched on.

    Banners and customer notices are removed, planned steps are cancelled, staff are told, customers who got
    the outage notice are told the channel works again and how long it was down, and a "resolved" post goes
    out where the outage had been posted.
    """
    loaded = load()
    if channel not in loaded.config.channels:
        raise InputError(f"unknown channel {channel!r}; configured channels: {', '.join(loaded.config.channels)}")
    limits.check_length("--note", note, limits.NOTE)
    limits.check_length("--by", by, limits.BY)
    eng = engine(loaded)
    result = eng.close(channel, by=who(by), note=note)
    if not result.closed:
        # Nothing open: finish any switch-off left behind by an interrupted earlier restore.
        results = eng.run_due()
        if as_json:
            print_json({"ok": True, "closed": False, "message": f"no open outage of {channel}",
                        "ran": [r.as_dict() for r in results]})
        else:
            console().print(f"No open outage of {channel}; nothing to restore.", markup=False)
            _results_table(results, "Finished pending work")
        _exit_for(results)
        return
    assert result.situation is not None
    sid = result.situation.id
    results = eng.run_due([sid])
    sit = eng.store.get_situation(sid)
    assert sit is not None
    if as_json:
        from continuity.views import situation_dict

        print_json({"ok": not any(r.state in ("failed", "uncertain") for r in results), "closed": True,
                    "situation": situation_dict(sit, eng.store.steps_for(sid), eng.clock.now()),
                    "ran": [r.as_dict() for r in results]})
    else:
        from continuity.durations import format_duration

        assert sit.closed_at is not None
        console().print(f"[bold]Outage #{sid} of {esc(channel)} closed[/] after "
                        f"{format_duration(sit.closed_at - sit.opened_at)}.")
        _results_table(results, "Switched off and announced")
    _exit_for(results)


@app.command()
@guarded
def status(as_json: JSON = False) -> None:
    """Show open situations, each step's state, and what customers see right now.

    Failed and uncertain steps are shown in red with the error and the next retry.
    """
    from continuity.views import status_view

    eng = engine()
    view = status_view(eng.store, eng.clock.now())
    from continuity.quorum import daemon_views, watched_from_elsewhere

    if watched_from_elsewhere(eng.loaded):  # what each vantage sees lives in the daemon's memory
        view["vantages"] = daemon_views(eng.loaded)
    if as_json:
        print_json(view)
        return
    _print_status(view, eng.loaded.config.organisation.timezone, eng.clock.now())
    if "vantages" in view:
        _print_vantages(view["vantages"])


def _print_vantages(views: dict[str, Any]) -> None:
    """One line per channel and vantage: what it sees, or that it is silent."""
    out = console()
    if "error" in views:
        out.print(f"\nVantages: {esc(views['error'])}")
        return
    out.print(f"\n[bold]Vantages[/] (this daemon: {esc(views.get('vantage') or '')})")
    for channel, q in views.get("channels", {}).items():
        for name, v in q.get("vantages", {}).items():
            seen = "[yellow]silent[/]" if v.get("silent") else "[red]down[/]" if v.get("sees_down") else \
                f"[green]{esc(v.get('status') or 'waiting')}[/]"
            out.print(f"  {esc(channel)} from {esc(name)}: {seen} {esc(v.get('reason') or '')}  (quorum "
                      f"{q.get('quorum')})")
    for name, at in views.get("heard", {}).items():
        out.print(f"  {esc(name)} last heard {esc(at)}", markup=True)


def _print_status(view: dict[str, Any], tz: str, now: datetime) -> None:
    from rich.table import Table

    out = console()
    overdue = 0
    if not view["open"]:
        out.print("[green]All clear:[/] no open situations.")
    for sit in [*view["open"], *view["closed_with_pending_work"]]:
        head = "OPEN" if sit["state"] == "open" else "CLOSED, work pending"
        out.print(f"\n[bold]#{sit['id']} {esc(sit['kind'])} of {esc(sit['channel'])}[/] — {head} — "
                  f"{esc(sit['reason'])}")
        out.print(f"  opened {_local(sit['opened_at'], tz, named=True)} by {sit['opened_by']} ({sit['source']}), "
                  f"running {sit['duration']}, ETA {_local(sit['eta'], tz, named=True)}", markup=False)
        on = ", ".join(f"{s['step']} ({s['sink']})" for s in sit["switched_on"]) or "nothing"
        out.print(f"  switched on now: {on}", markup=False)
        for bad in sit["attention"]:
            state = "INTERRUPTED" if bad["interrupted"] else bad["state"].upper()
            out.print(f"  [bold red]!! step {bad['id']} {esc(bad['step'])} → {esc(bad['sink'])} "
                      f"{esc(state)}[/]: {esc(bad['recovery'] or bad['last_error'])}"
                      + (f" (retry at {_local(bad['next_retry_at'], tz, named=True)})" if bad["next_retry_at"] else ""))
        table = Table(show_edge=False, pad_edge=False)
        for col in ("id", "step", "action", "sink", f"due{zone_name(now, tz)}", "state", "tries"):
            table.add_column(col, no_wrap=col.startswith(("step", "due")))
        for s in sit["steps"]:
            if s["state"] == "cancelled":
                continue
            state = "interrupted" if s["interrupted"] else s["state"]
            if state == "planned" and s["due_at"] and datetime.fromisoformat(s["due_at"]) <= now:
                state, overdue = "overdue", overdue + 1  # due, and nothing has run it
            colour = {"done": "green", "failed": "bold red", "uncertain": "bold yellow", "running": "cyan",
                      "interrupted": "bold yellow", "undone": "dim", "overdue": "bold yellow"}.get(state, "")
            table.add_row(str(s["id"]), esc(s["step"]), "switch off" if s["phase"] == "undo" else esc(s["action"]),
                          esc(s["sink"]), _local(s["due_at"], tz),
                          f"[{colour}]{esc(state)}[/]" if colour else esc(state),
                          str(s["attempts"]))
        out.print(table)
    if overdue:
        many = overdue > 1
        out.print(f"\n[bold yellow]{overdue} step{'s are' if many else ' is'} overdue[/]: nothing has run "
                  f"{'them' if many else 'it'} yet. `continuity tick` runs what is due now; `continuity daemon` "
                  "(or `tick` from cron every minute) runs steps at their times.")
    if view["next_due"]:
        out.print(f"\nNext step due: {_local(view['next_due'], tz, named=True)}")


@app.command()
@guarded
def tick(as_json: JSON = False) -> None:
    """Run every step that is due now: banners, social posts, reminders, retries.

    Put it in cron every minute to run playbooks without the daemon. Steps left half-done by a crash are
    resumed (idempotent sinks) or flagged `uncertain` for you to confirm; nothing is sent twice.
    """
    from continuity import triggers

    eng = engine()
    recovered = eng.recover()
    triggers.advance(eng)  # windows and campaigns that are due open, start or end before their steps run
    # Interrupted mid-send by a crash with a sink that cannot safely repeat: a person has to look.
    flagged = [row for row in (eng.store.get_step(r.id) for r in recovered) if row and row.state == "uncertain"]
    results = eng.run_due()
    # ...and those a sink found in doubt just now (a mail server that took a message and never confirmed it)
    flagged += [r.row for r in results if r.state == "uncertain" and r.row.id not in {f.id for f in flagged}]
    failed = any(r.state in ("failed", "uncertain") for r in results) or bool(flagged)
    if as_json:
        print_json({"ok": not failed, "recovered": [r.id for r in recovered], "uncertain": [r.id for r in flagged],
                    "ran": [r.as_dict() for r in results]})
    else:
        if results:
            _results_table(results, "Ran")
        elif not flagged:
            console().print("Nothing due.")
        for row in flagged:
            err_console().print(f"Step {row.id} ({row.step_id} → {row.sink}) may or may not have gone out: check, "
                                f"then `continuity settle {row.id} sent` or `continuity settle {row.id} resend`.",
                                markup=False)
    if failed:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command()
@guarded
def history(
    since: Annotated[str, typer.Option("--since", help="How far back: 7d, 24h, …")] = "7d",
    as_json: JSON = False,
) -> None:
    """List situations opened or closed in a period, with their durations and open problems."""
    from continuity.durations import parse_duration
    from continuity.views import history_view

    try:
        span = parse_duration(since)
    except ValueError as exc:
        raise InputError(f"--since: {exc}") from None
    eng = engine()
    now = eng.clock.now()
    rows = history_view(eng.store, now - span, now)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    tz = eng.loaded.config.organisation.timezone
    zone = zone_name(now, tz)  # the table's times are in the organisation's zone: named once when not ours
    table = Table(title=f"Situations in the last {esc(since)}" + (f" (times{zone})" if zone else ""),
                  title_justify="left")
    for col in ("id", "kind", "channel", "opened", "closed", "duration", "by", "reason", "attention"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), esc(r["kind"]), esc(r["channel"]), _local(r["opened_at"], tz),
                      _local(r["closed_at"], tz), esc(r["duration"]), esc(r["opened_by"]), esc(r["reason"][:50]),
                      str(len(r["attention"])) or "")
    console().print(table)


def _period_report(fmt: str, month: str | None, since: str | None, until: str | None) -> None:
    """`report --month`: the period's figures from continuity.history, days in the organisation's zone."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from continuity.history import month_period, period_report, report_markdown
    from continuity.public.status import public_channels

    eng = engine()
    tz = eng.loaded.config.organisation.timezone
    now = eng.clock.now()
    if month and (since or until):
        raise InputError("--month: not with --since/--until")
    if month:
        try:
            start, end = month_period(month, tz)
        except ValueError as exc:
            raise InputError(f"--month {exc}") from None
    elif since:
        def moment(text: str, field: str) -> datetime:
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                raise InputError(f"{field} {text!r}: expected an ISO date or time") from None
            return dt if dt.tzinfo else dt.replace(tzinfo=ZoneInfo(tz))

        start = moment(since, "--since")
        end = moment(until, "--until") if until else now
        if end <= start:
            raise InputError("--until: must be after --since")
    else:
        raise InputError("report: give a situation ID, --month YYYY-MM or --since")
    channels = public_channels(eng.loaded) or list(eng.loaded.config.channels)
    rep = period_report(eng.store, channels, tz, start, end, now)
    if fmt == "json":
        print_json(rep)
    elif fmt == "html":
        from continuity.history import daily
        from continuity.report_html import month_page
        from continuity.variables import channel_name

        zone = ZoneInfo(tz)
        last = (end - timedelta(microseconds=1)).astimezone(zone).date()  # the period's last day, whole
        days = daily(eng.store, channels, tz, start.astimezone(zone).date(), last, now)
        locale = eng.loaded.config.organisation.staff_lang
        names = {c: channel_name(eng.loaded, c, locale) for c in channels}
        typer.echo(month_page(eng.loaded, rep, days, locale, names), nl=False)
    else:
        typer.echo(report_markdown(rep), nl=False)


@app.command()
@guarded
def report(
    situation_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="Situation number (see history).")]
    = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, json or html (one self-contained page)")] = "md",
    month: Annotated[str | None, typer.Option("--month", help="A calendar month, YYYY-MM.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Period start, ISO date or time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Period end (exclusive), ISO date or time.")]
    = None,
) -> None:
    """Print one situation's timeline (ID), or a period's availability (--month, or --since/--until).

    Markdown for the post-mortem or the management meeting (times in the organisation's zone), --format json,
    or --format html: one page with its charts, inline, that loads nothing from elsewhere (to mail on).
    """
    from continuity.views import report_markdown, report_view

    if fmt not in ("md", "json", "html"):
        raise InputError(f"--format {fmt!r}: expected md, json or html")
    if situation_id is None:
        _period_report(fmt, month, since, until)
        return
    if month or since or until:
        raise InputError("--month/--since/--until: not with a situation ID")
    eng = engine()
    rep = report_view(eng.store, situation_id, eng.clock.now())
    if rep is None:
        raise InputError(f"no situation #{situation_id}")
    if fmt == "json":
        print_json(rep)
    elif fmt == "html":
        from continuity.report_html import situation_page

        typer.echo(situation_page(eng.loaded, rep, eng.loaded.config.organisation.staff_lang, eng.clock.now()),
                   nl=False)
    else:
        tz = eng.loaded.config.organisation.timezone
        shown = {**rep, **{k: _local(rep[k], tz) if rep[k] else None for k in ("opened_at", "closed_at", "eta")},
                 "timeline": [{**e, "at": _local(e["at"], tz)} for e in rep["timeline"]]}
        typer.echo(report_markdown(shown), nl=False)


@app.command()
@guarded
def retry(
    step: Annotated[int, typer.Argument(help="Ledger id of a failed step (see status or report).")],
    by: Annotated[str | None, typer.Option("--by", help="Who asks (default: your user name).")] = None,
    as_json: JSON = False,
) -> None:
    """Send a failed step again now, with a fresh round of retries.

    For a sink that was down longer than the automatic retries lasted (X answering 503 for an hour): the post,
    banner or message goes out as it would have. Refused for a customer-facing step of a closed situation.
    """
    from continuity.settle import retry as send_again

    eng = engine()
    row = send_again(eng, step, by=who(by))
    results = eng.run_due([row.situation_id])
    mine = [r for r in results if r.row.id == row.id]
    if as_json:
        print_json({"ok": bool(mine) and mine[0].state == "done", "step": row.id,
                    "ran": [r.as_dict() for r in results]})
    else:
        console().print(f"Step {row.id} ({row.step_id} → {row.sink}) sent again.", markup=False)
        _results_table(results, "Ran")
    _exit_for(results)


def _settle(step: int, sent: bool, by: str | None, as_json: bool) -> None:
    from continuity.settle import confirm as settle_step

    eng = engine()
    row = settle_step(eng, step, sent=sent, by=who(by))
    results = [] if sent else eng.run_due([row.situation_id])
    row = eng.store.get_step(row.id) or row  # after the resend, not before it
    if as_json:
        print_json({"ok": not any(r.state in ("failed", "uncertain") for r in results), "step": row.id,
                    "state": row.state, "ran": [r.as_dict() for r in results]})
    else:
        console().print(f"Step {row.id} ({row.step_id} → {row.sink}) marked {'sent' if sent else 'not sent'}.",
                        markup=False)
        _results_table(results, "Ran")
    _exit_for(results)


class Verdict(StrEnum):
    sent = "sent"
    resend = "resend"


@app.command()
@guarded
def settle(
    step: Annotated[int, typer.Argument(help="Ledger id of an `uncertain` step (see `status`).")],
    verdict: Annotated[Verdict, typer.Argument(
        help="sent: it did arrive, mark it done and send nothing; resend: it did not, send it again now.")],
    by: Annotated[str | None, typer.Option("--by", help="Who decided (default: your user name).")] = None,
    as_json: JSON = False,
) -> None:
    """Settle a step nobody knows the outcome of (state `uncertain`).

    A step is uncertain when the remote took a message but never confirmed it (a mail server that did not
    answer the final dot in time) or a crash cut the sending off. continuity never sends it again on its own:
    check the mailbox or the channel, then say `sent` or `resend`. Only the recipients left unconfirmed are
    sent again.
    """
    _settle(step, verdict is Verdict.sent, by, as_json)


@app.command(hidden=True)
@guarded
def confirm(
    step: Annotated[int, typer.Argument(help="Ledger id of an `uncertain` step (see status).")],
    sent: Annotated[bool, typer.Option("--sent/--not-sent",
                                       help="It did go out (mark done) / it did not (send it again).")],
    by: Annotated[str | None, typer.Option("--by")] = None,
    as_json: JSON = False,
) -> None:
    """The older name of `settle`: `confirm ID --sent` is `settle ID sent`, `--not-sent` is `resend`."""
    _settle(step, sent, by, as_json)
