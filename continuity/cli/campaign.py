"""campaign register / list / show / update / cancel / brief, and the agents' `faq` and `reply`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from continuity.cli import app
from continuity.cli.common import clock, console, engine, err_console, guarded, local_time, print_json, who
from continuity.cli.common import load as load_config
from continuity.errors import InputError

if TYPE_CHECKING:
    from continuity.campaigns.store import CampaignRun
    from continuity.engine import Engine

camp = typer.Typer(
    help="Register marketing campaigns ahead of launch. Staff are briefed (terms, codes, FAQ, template answers) "
         "before the start and reminded on the morning of launch; at the start a surge mode switches on by "
         "itself (website banner with the FAQ link, a notice to customers that answers take longer, a status "
         "post) and at the end it switches off and staff get a summary. Runs with `continuity tick` (cron) or "
         "`continuity daemon`.",
    no_args_is_help=True,
)
app.add_typer(camp, name="campaign")

JSON = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
BY = Annotated[str | None, typer.Option("--by", help="Who does it (default: your user name).")]
NAME = Annotated[str, typer.Argument(metavar="NAME", help="The campaign's name (see `campaign list`).")]


def _local(dt: datetime | None, tz: str) -> str:
    return local_time(dt, tz)


def _run_dict(eng: Engine, run: CampaignRun) -> dict[str, Any]:
    from continuity.campaigns.gaps import channels_of, missing_fields
    from continuity.campaigns.phases import campaign_of, reminder_time
    from continuity.campaigns.store import get_version

    c = campaign_of(eng, run)
    version = get_version(eng.store, run.name, run.version)
    sit = eng.store.get_situation(run.situation_id) if run.situation_id else None
    brief_at = sit.opened_at if sit else max(run.opens_at, run.created_at)
    reminder = reminder_time(eng, run.starts_at, brief_at)
    return {
        "name": run.name, "run": run.run, "version": run.version, "state": run.state, "title": c.title,
        "starts_at": run.starts_at.isoformat(), "ends_at": run.ends_at.isoformat(), "brief_at": brief_at.isoformat(),
        "reminder_at": reminder.isoformat() if reminder else None, "situation_id": run.situation_id,
        "channels": channels_of(eng.loaded, c), "load": c.load, "codes": [code.code for code in c.codes],
        "playbook": c.playbook,
        "recurring": c.recurrence is not None, "source": version.source, "registered_by": run.created_by,
        "missing": missing_fields(eng.loaded, c),
    }


def _print_warnings(warnings: list[str]) -> None:
    out = err_console()
    for w in warnings:
        out.print(f"[bold yellow]warning:[/] {w}", markup=True, highlight=False, soft_wrap=True)


def _print_schedule(eng: Engine, info: dict[str, Any]) -> None:
    tz = eng.loaded.config.organisation.timezone
    out = console()

    def at(key: str) -> str:
        return _local(datetime.fromisoformat(info[key]), tz) if info[key] else "none (the briefing came later)"

    out.print(f"  staff briefing: {at('brief_at')}" + (" (sent)" if info["situation_id"] else ""))
    out.print(f"  reminder:       {at('reminder_at')}")
    out.print(f"  launch:         {at('starts_at')}")
    out.print(f"  end:            {at('ends_at')}")


def _after_change(eng: Engine, name: str) -> list[Any]:
    """Move the campaign along the clock now (a late campaign is briefed at once) and run what is due."""
    from continuity.campaigns.phases import advance, find_run

    advance(eng, name)
    run = find_run(eng, name)
    return eng.run_due([run.situation_id]) if run.situation_id else []


FLAG = "Without FILE:"
UPDATE_FLAG = "Without FILE, a change:"


@camp.command("register")
@guarded
def register(
    file: Annotated[Path | None, typer.Argument(help="The campaign file (see playbooks/campaign-example.yaml). "
                                                     "Or leave it out and give the main fields as flags.")] = None,
    name: Annotated[str | None, typer.Option("--name", help=f"{FLAG} the campaign's name, e.g. spring-sale.")] = None,
    title: Annotated[str | None, typer.Option("--title", help=f"{FLAG} the title customers and staff read "
                                                              "(one text for every locale).")] = None,
    start: Annotated[str | None, typer.Option("--start", help=f"{FLAG} when it starts, with a timezone: "
                                                              "'2026-12-01 08:00 Europe/Budapest' or "
                                                              "2026-12-01T08:00:00+01:00.")] = None,
    end: Annotated[str | None, typer.Option("--end", help=f"{FLAG} when it ends, with a timezone.")] = None,
    terms: Annotated[str | None, typer.Option("--terms", help=f"{FLAG} the terms, as staff must explain them.")]
    = None,
    code: Annotated[list[str] | None, typer.Option("--code", metavar="CODE=DESCRIPTION",
                                                   help=f"{FLAG} a discount code and what it gives, e.g. "
                                                        "SPRING10='10% off everything'; repeat for more codes.")]
    = None,
    channel: Annotated[list[str] | None, typer.Option("--channel", metavar="CHANNEL",
                                                      help=f"{FLAG} a channel expected to surge (email, chat, "
                                                           "phone, …); repeatable.")] = None,
    load: Annotated[str | None, typer.Option("--load", help=f"{FLAG} expected load, e.g. 3x (default 2x).")]
    = None,
    faq_url: Annotated[str | None, typer.Option("--faq-url", help=f"{FLAG} the campaign's FAQ page (FAQ entries "
                                                                  "and template answers only come from a "
                                                                  "campaign file).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Accept a lead time under campaigns.min_lead (staff get "
                                                        "less time to prepare).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check it and show every text it will send (briefing, "
                                                            "banner, notice, auto-reply, …) in every locale, and "
                                                            "when; store nothing.")] = False,
    by: BY = None,
    as_json: JSON = False,
) -> None:
    """Check a campaign file, or the campaign given as flags, and put the campaign on the calendar.

    Staff are briefed `lead` before the start (default campaigns.min_lead, 48h) and reminded on the morning of
    the launch. At the start customers see a high-demand banner with the FAQ link and a notice that answers take
    longer on the campaign's channels, and customer email gets an automatic answer; at the end everything is
    switched off and staff get a summary. Every problem is reported with file, line and field (or the flag),
    and nothing is stored (exit 2) until it is right.

    Without FILE, --name, --start and --end are enough to register early (title: the name; channels: every
    channel with a contact); what is not given yet is listed as still missing. FAQ entries, template answers,
    per-locale texts, expected waits, recurrence and the people to brief only come from a campaign file: a
    campaign registered with flags has no FAQ entries, so customers and agents are sent to its FAQ page (add
    entries later with `campaign update NAME FILE`).
    """
    from continuity.campaigns.flags import SOURCE, Flags, from_flags
    from continuity.campaigns.load import precheck
    from continuity.campaigns.phases import find_run
    from continuity.campaigns.phases import register as do_register
    from continuity.errors import Location

    flags = Flags(name=name, title=title, start=start, end=end, terms=terms, codes=list(code or []),
                  channels=list(channel or []), load=load, faq_url=faq_url)
    if file is not None and flags.given():
        raise InputError("give either a campaign FILE or the fields as flags (--name, --start, …), not both",
                         Location(SOURCE))
    if file is None and not flags.given():
        raise InputError("give a campaign FILE (see playbooks/campaign-example.yaml), or the fields as flags: "
                         "--name, --start and --end at least (see --help)", Location(SOURCE))
    source = file if file is not None else from_flags(flags)  # flag mistakes are reported before the store opens
    loaded = load_config()
    if file is not None or dry_run:  # a bad file is refused before the ledger is opened (or created)
        source = precheck(loaded, file if file is not None else source, clock().now())
    if dry_run:
        _print_dry_run(loaded, source[0], as_json)
        return
    eng = engine(loaded)
    result = do_register(eng, source, by=who(by), force=force)
    ran = _after_change(eng, result.run.name)
    info = _run_dict(eng, find_run(eng, result.run.name))
    if as_json:
        print_json({"ok": True, "campaign": info, "warnings": result.warnings, "ran": [r.as_dict() for r in ran]})
        return
    _print_warnings(result.warnings)
    console().print(f"[bold]Campaign {info['name']} registered[/] (version {info['version']}).")
    _print_schedule(eng, info)
    if info["missing"]:
        console().print(f"  still missing:  {', '.join(info['missing'])} (add them with `continuity campaign "
                        f"update {info['name']} FILE`)", markup=False)


def _print_dry_run(loaded: Any, campaign: Any, as_json: bool) -> None:
    """The campaign's schedule and every text it will send, per locale; nothing stored."""
    from continuity.campaigns.phases import briefing_time
    from continuity.preview import campaign_texts

    lead = campaign.lead if campaign.lead is not None else loaded.config.campaigns.min_lead
    tz = loaded.config.organisation.timezone
    brief = briefing_time(loaded, campaign.start, lead)
    steps = campaign_texts(loaded, campaign, clock().now())
    if as_json:
        print_json({"dry_run": True, "name": campaign.name, "brief_at": brief.isoformat(),
                    "starts_at": campaign.start.isoformat(), "ends_at": campaign.end.isoformat(), "steps": steps})
        return
    out = console()
    out.print(f"Dry run: campaign {campaign.name} (nothing was stored). Briefing {_local(brief, tz)}, start "
              f"{_local(campaign.start, tz)}, end {_local(campaign.end, tz)}.", markup=False)
    for s in steps:
        out.print(f"\n== {s['step']} ({s['action']} → {s['to']}), {s['when']}", markup=False, style="bold")
        for t in s["texts"]:
            out.print(f"-- [{t['locale']}]", markup=False)
            out.print(t["text"].strip(), markup=False, highlight=False)


@camp.command("new")
@guarded
def new(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The campaign's name, e.g. spring-sale.")],
    start: Annotated[str | None, typer.Option("--start", help="When it starts, organisation time: 2027-03-01 or "
                                                              "'2027-03-01 08:00' (default: two weeks from today, "
                                                              "00:00).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The file to write (default NAME.yaml; never "
                                                                 "overwritten).")] = None,
) -> None:
    """Write a campaign file to start from: the shipped example, named NAME and dated ahead.

    Edit its texts, codes and FAQ, check what it will send with `continuity campaign register FILE --dry-run`,
    then register it.
    """
    from continuity.campaigns.load import precheck
    from continuity.campaigns.phases import briefing_time
    from continuity.campaigns.scaffold import default_start, parse_start, scaffold
    from continuity.shipped import shipped_dir

    loaded = load_config()
    tz = loaded.config.organisation.timezone
    now = clock().now()
    starts = parse_start(start, tz) if start else default_start(now, tz)
    lead = loaded.config.campaigns.min_lead
    if briefing_time(loaded, starts, lead) <= now:
        raise InputError(f"--start {_local(starts, tz)}: too soon to brief staff {_lead_words(lead)} ahead "
                         "(campaigns.min_lead); give a later start")
    path = out or Path(f"{name}.yaml")
    example = (shipped_dir("playbooks") / "campaign-example.yaml").read_text(encoding="utf-8")
    text = scaffold(example, name, starts, tz)
    try:
        with path.open("x", encoding="utf-8") as written:  # created here or refused: never overwritten
            written.write(text)
    except FileExistsError:
        raise InputError(f"{path} already exists; nothing was written (choose another --out)") from None
    try:
        campaign, _ = precheck(loaded, path, now)
    except InputError:
        path.unlink()
        raise
    console().print(f"Wrote {path}: campaign {name}, {_local(campaign.start, tz)} to {_local(campaign.end, tz)}; "
                    f"staff briefed {_local(briefing_time(loaded, campaign.start, lead), tz)}. Edit its texts, "
                    f"then `continuity campaign register {path} --dry-run` shows what it will send.", markup=False)


def _lead_words(lead: Any) -> str:
    from continuity.durations import format_duration

    return format_duration(lead)


@camp.command("list")
@guarded
def list_campaigns(
    show_all: Annotated[bool, typer.Option("--all", help="Include ended and cancelled runs.")] = False,
    as_json: JSON = False,
) -> None:
    """List registered, briefed and live campaigns (--all: ended and cancelled ones too)."""
    from continuity.campaigns.store import runs

    eng = engine()
    rows = [_run_dict(eng, r) for r in runs(eng.store, include_finished=show_all)]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    tz = eng.loaded.config.organisation.timezone
    table = Table(title="Campaigns", title_justify="left")
    for col in ("name", "state", "version", "briefing", "start", "end", "channels", "codes"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"] + (f" (run {r['run']})" if r["run"] > 1 else ""), r["state"], str(r["version"]),
                      _local(datetime.fromisoformat(r["brief_at"]), tz),
                      _local(datetime.fromisoformat(r["starts_at"]), tz), _local(datetime.fromisoformat(r["ends_at"]),
                                                                                  tz),
                      ", ".join(r["channels"]), ", ".join(r["codes"]))
    console().print(table)


@camp.command("show")
@guarded
def show(name: NAME, as_json: JSON = False) -> None:
    """Show a campaign: its schedule, the version staff were briefed on, every version's changes, and the
    steps of its surge (what went out and what is planned)."""
    from continuity.campaigns.phases import find_run
    from continuity.campaigns.store import get_version, versions
    from continuity.views import step_dict

    eng = engine()
    run = find_run(eng, name)
    info = _run_dict(eng, run)
    info["snapshot"] = get_version(eng.store, name, run.version).snapshot
    info["versions"] = [{"version": v.version, "at": v.created_at.isoformat(), "by": v.created_by,
                         "source": v.source, "changes": v.changes} for v in versions(eng.store, name)]
    info["steps"] = [step_dict(r) for r in eng.store.steps_for(run.situation_id)] if run.situation_id else []
    if as_json:
        print_json(info)
        return
    tz = eng.loaded.config.organisation.timezone
    out = console()
    title = info["title"] if isinstance(info["title"], str) else " / ".join(dict.fromkeys(info["title"].values()))
    out.print(f"[bold]{name}[/] — {title} — {info['state']}, version {run.version}"
              + (f", run {run.run}" if run.run > 1 else ""))
    _print_schedule(eng, info)
    out.print(f"  channels: {', '.join(info['channels'])} (expected load {info['load']}); codes: "
              f"{', '.join(info['codes']) or 'none'}; playbook {info['playbook']}")
    for v in info["versions"]:
        out.print(f"  version {v['version']} by {v['by']} at {_local(datetime.fromisoformat(v['at']), tz)} "
                  f"from {v['source']}")
        for change in v["changes"]:
            out.print(f"    - {change}", markup=False)
    for s in info["steps"]:
        out.print(f"  step {s['step']:<14} {s['phase']:<6} → {s['sink']:<10} "
                  f"{_local(datetime.fromisoformat(s['due_at']), tz)}  {s['state']}")


@camp.command("update")
@guarded
def update(
    name: NAME,
    file: Annotated[Path | None, typer.Argument(help="The changed campaign file. Or leave it out and give only "
                                                     "what changes as flags.")] = None,
    title: Annotated[str | None, typer.Option("--title", help=f"{UPDATE_FLAG} a new title (one text for every "
                                                              "locale).")] = None,
    start: Annotated[str | None, typer.Option("--start", help=f"{UPDATE_FLAG} a new start, with a timezone.")]
    = None,
    end: Annotated[str | None, typer.Option("--end", help=f"{UPDATE_FLAG} a new end, with a timezone: "
                                                          "'2026-12-04 20:00 Europe/Budapest' extends it.")] = None,
    terms: Annotated[str | None, typer.Option("--terms", help=f"{UPDATE_FLAG} new terms.")] = None,
    code: Annotated[list[str] | None, typer.Option("--code", metavar="CODE=DESCRIPTION",
                                                   help=f"{UPDATE_FLAG} the codes; repeat for more. Replaces "
                                                        "every code of the current version.")] = None,
    channel: Annotated[list[str] | None, typer.Option("--channel", metavar="CHANNEL",
                                                      help=f"{UPDATE_FLAG} the channels expected to surge; "
                                                           "replaces the current list.")] = None,
    load: Annotated[str | None, typer.Option("--load", help=f"{UPDATE_FLAG} expected load, e.g. 3x.")] = None,
    faq_url: Annotated[str | None, typer.Option("--faq-url", help=f"{UPDATE_FLAG} the FAQ page.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Accept a new start under campaigns.min_lead.")] = False,
    by: BY = None,
    as_json: JSON = False,
) -> None:
    """Store a new version of a campaign, from FILE or from flags naming only what changes.

    The same checks as `register` apply. If staff were already briefed, they get a message listing what changed
    (dates, terms, codes, FAQ, answers); while the campaign is live, the banner and the customer notice are
    re-issued with the new texts. Planned phases move with the dates. With flags, everything not given (FAQ,
    answers, per-locale texts, recurrence) stays as in the current version: `campaign update spring-sale
    --end '2026-04-12 23:59 Europe/Budapest'` extends a campaign by a few days.
    """
    from continuity.campaigns.flags import SOURCE, Flags, over_version
    from continuity.campaigns.load import precheck
    from continuity.campaigns.phases import find_run
    from continuity.campaigns.phases import update as do_update
    from continuity.campaigns.store import get_version
    from continuity.errors import Location

    flags = Flags(title=title, start=start, end=end, terms=terms, codes=list(code or []),
                  channels=list(channel or []), load=load, faq_url=faq_url)
    if file is not None and flags.given():
        raise InputError("give either the changed campaign FILE or the changes as flags (--end, --terms, …), "
                         "not both", Location(SOURCE))
    if file is None and not flags.given():
        raise InputError("give the changed campaign FILE, or what changes as flags: --title, --start, --end, "
                         "--terms, --code, --channel, --load, --faq-url (see --help)", Location(SOURCE))
    loaded = load_config()
    # A bad file is refused before the ledger is opened (or created); flags need the current version first.
    checked = precheck(loaded, file, clock().now()) if file is not None else None
    eng = engine(loaded)
    source = checked or over_version(get_version(eng.store, name, find_run(eng, name).version).snapshot, flags)
    result = do_update(eng, name, source, by=who(by), force=force)
    ran = _after_change(eng, name)
    info = _run_dict(eng, find_run(eng, name))
    if as_json:
        print_json({"ok": True, "campaign": info, "changes": result.changes, "staff_told": result.staff_told,
                    "warnings": result.warnings, "ran": [r.as_dict() for r in ran]})
        return
    _print_warnings(result.warnings)
    out = console()
    if not result.changes:
        out.print(f"Campaign {name}: nothing changed (still version {info['version']}).")
        return
    out.print(f"[bold]Campaign {name} updated[/] to version {info['version']}:")
    for change in result.changes:
        out.print(f"  - {change}", markup=False)
    out.print("Staff were told what changed." if result.staff_told
              else "Staff have not been briefed yet: the briefing will carry this version.")


@camp.command("cancel")
@guarded
def cancel(name: NAME, by: BY = None, as_json: JSON = False) -> None:
    """Cancel a campaign. Before launch, its planned steps are removed (customers never see anything); if staff
    were briefed they are told it is cancelled. After launch, the banner and the customer notice are switched
    off now."""
    from continuity.campaigns.phases import cancel as do_cancel

    eng = engine()
    run = do_cancel(eng, name, by=who(by))
    ran = eng.run_due([run.situation_id]) if run.situation_id else []
    if as_json:
        print_json({"ok": True, "campaign": _run_dict(eng, run), "ran": [r.as_dict() for r in ran]})
        return
    console().print(f"Campaign {name} cancelled." + (" Staff were told." if run.situation_id else ""))


@camp.command("brief")
@guarded
def brief(
    name: NAME,
    again: Annotated[bool, typer.Option("--again", help="Send a fresh copy even if the briefing went out.")] = False,
    by: BY = None,
    as_json: JSON = False,
) -> None:
    """Send the staff briefing now instead of waiting for its scheduled time.

    This is the same briefing the schedule sends, so it never goes out twice: after `brief`, the scheduled one
    does not come again, and `brief` on an already briefed campaign only says when it went out (use --again for
    a fresh copy, e.g. for a new shift). Customers see nothing until launch.
    """
    from continuity.campaigns.phases import brief_now

    eng = engine()
    result = brief_now(eng, name, by=who(by), again=again)
    ran = eng.run_due([result.run.situation_id]) if result.sent_now and result.run.situation_id else []
    if as_json:
        print_json({"ok": True, "sent": result.sent_now, "campaign": _run_dict(eng, result.run),
                    "ran": [r.as_dict() for r in ran]})
        return
    tz = eng.loaded.config.organisation.timezone
    if result.sent_now:
        console().print(f"Briefing of {name} sent.")
    else:
        console().print(f"The briefing of {name} already went out ({_local(result.sent_at, tz)}); nothing sent. "
                        "Use --again to send a fresh copy.")


# the agents' commands --------------------------------------------------------------------------------------


def _vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--var {pair!r}: expected name=value")
        out[key.strip()] = value
    return out


@app.command()
@guarded
def faq(
    query: Annotated[str, typer.Argument(help="Words to look for (accents and case do not matter).")] = "",
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign.")] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="Only this language (default: all served).")] = None,
    as_json: JSON = False,
) -> None:
    """Search the FAQ of active and upcoming campaigns, for agents answering customers.

    Shows the questions and answers staff were briefed on (the registered version), in every language the
    organisation serves or in --locale. Changes nothing and sends nothing.
    """
    from continuity.campaigns.agents import search_faq

    eng = engine()
    hits = search_faq(eng, query, campaign=campaign, locale=locale)
    if as_json:
        print_json([h.__dict__ for h in hits])
        return
    out = console()
    if not hits:
        out.print("No FAQ entry matches." if query else "No active or upcoming campaign has a FAQ.")
        return
    from rich.markup import escape

    for h in hits:
        out.print(f"[bold]{escape(h.campaign)}[/] \\[{h.locale}] [bold]{escape(h.q)}[/]", highlight=False)
        out.print(f"  {h.a}", markup=False)


@app.command()
@guarded
def reply(
    template: Annotated[str, typer.Argument(metavar="ANSWER", help="The template answer's name (see the briefing "
                                                                   "or `campaign show`).")],
    campaign: Annotated[str | None, typer.Option("--campaign", help="The campaign (needed when several have "
                                                                    "an answer of that name).")] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="The customer's language (default: the "
                                                                "organisation's).")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="A value the answer needs: name=value "
                                                                "(repeat).")] = None,
    as_json: JSON = False,
) -> None:
    """Render a campaign's template answer in the customer's language, ready to paste.

    Nothing is sent: the text is printed. If the answer needs values you did not give (customer name, order
    number, …), it says which ones (exit 2).
    """
    from continuity.campaigns.agents import reply as do_reply

    eng = engine()
    result = do_reply(eng, template, campaign=campaign, locale=locale, values=_vars(var or []))
    if as_json:
        print_json(result.__dict__)
        return
    typer.echo(result.text)
