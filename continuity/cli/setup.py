"""init, validate, schema: getting a configuration right before the bad day."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

import typer

from continuity.cli import app
from continuity.cli.common import STATE, clock, console, err_console, esc, guarded, load, print_json
from continuity.errors import InputError


@app.command()
@guarded
def init() -> None:
    """Write a complete, commented config file from the shipped example.

    Written to --config (default ./continuity.yaml). It works as it is: every message lands in ./outbox/
    until you configure real sinks. Never overwrites: a config that exists is left as it is (exit 0, so the
    quick start can be run again).
    """
    from continuity.shipped import example_config

    target = STATE.config_path
    if target.exists():
        err_console().print(f"{target} already exists; left as it is (edit it, or pass --config NEW_PATH).",
                            markup=False)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(example_config(), target)
    console().print(f"Wrote {target}. Next: `continuity validate`, then try `continuity drill phone`.", markup=False)


@app.command()
@guarded
def validate(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Check the config, every playbook and every template in every locale.

    Templates are rendered with sample data, with and without an ETA. Campaign files lying beside the
    playbooks (campaign-*.yaml) get the checks of `campaign register`, except those that depend on the
    date (start in the future, lead time) or on the campaigns already registered. A registered campaign whose
    staff briefing is due within campaigns.min_lead (or went out already) and that still lacks terms, codes,
    FAQ entries or template answers gets a warning (exit 0).
    Reports every problem with file, line and field; exits 2 if anything is wrong. Changes nothing.
    """
    from continuity.campaigns.load import FileReport, check_files
    from continuity.errors import InputErrors
    from continuity.preview import render_everything
    from continuity.public.status import check_templates

    loaded = load()
    now = clock().now()
    errors: list[InputError] = []
    renders = 0
    campaigns: list[FileReport] = []
    try:
        renders = render_everything(loaded, now)
    except InputErrors as exc:
        errors.extend(exc.errors)
    try:
        renders += check_templates(loaded, now)  # the public status page, in every served locale
    except InputErrors as exc:
        errors.extend(exc.errors)
    try:
        campaigns = check_files(loaded, now)
    except InputErrors as exc:
        errors.extend(exc.errors)
    if errors:  # a broken playbook a campaign file uses would otherwise be reported twice
        raise InputErrors(list({str(e): e for e in errors}.values()))
    due = _due_gaps(loaded, now)
    info: dict[str, Any] = {
        "ok": True,
        "config": str(loaded.path),
        "channels": list(loaded.config.channels),
        "sinks": {name: inst.cls.type_name for name, inst in loaded.sinks.items()},
        "channel_playbooks": {ch: pb.name for ch, pb in loaded.channel_playbooks.items()},
        "playbooks": sorted(loaded.playbooks),
        "locales": loaded.config.organisation.locales,
        "renderings": renders,
        "campaign_files": [{"file": c.file, "name": c.name, "warnings": c.warnings} for c in campaigns],
        "campaigns_missing": [{"name": d.name, "file": d.file, "brief_at": d.brief_at.isoformat(),
                               "briefed": d.briefed, "missing": d.fields} for d in due],
    }
    if as_json:
        print_json(info)
        return
    files = f"{len(campaigns)} campaign file" + ("" if len(campaigns) == 1 else "s")
    console().print(f"[green]OK[/] {esc(loaded.path)}: {len(info['channels'])} channels, {len(info['sinks'])} sinks, "
                    f"{len(info['playbooks'])} playbooks, {files}, {renders} template renderings in "
                    f"{esc(', '.join(info['locales']))}.")
    from continuity.cli.common import local_time

    tz = loaded.config.organisation.timezone
    gaps = [f"{d.file}: campaign {d.name} {'was briefed' if d.briefed else 'is briefed'} "
            f"{local_time(d.brief_at, tz)} and still lacks {d.words} ({', '.join(d.fields)}); add them "
            f"with `continuity campaign update {d.name} FILE` or in the console" for d in due]
    for warning in [w for c in campaigns for w in c.warnings] + gaps:
        err_console().print(f"[bold yellow]warning:[/] {esc(warning)}", markup=True, highlight=False,
                            soft_wrap=True)


def _due_gaps(loaded: Any, now: Any) -> list[Any]:
    """The registered campaigns briefed soon that still lack something, read from a copy of the store (none
    without a store): validate changes nothing, not even a store's read marks."""
    from continuity.campaigns.gaps import due_gaps
    from continuity.preview import scratch_copy

    with scratch_copy(loaded) as store:
        return [] if store is None else due_gaps(loaded, store, now)


SCHEMA_KINDS = ("config", "campaign", "playbook")


@app.command()
@guarded
def schema(
    kind: Annotated[str, typer.Argument(help="config (default), campaign or playbook",
                                        show_default=False)] = "config",
) -> None:
    """Print the JSON Schema of the config file (or of a campaign file, or a playbook), for completion and
    checks in your editor: `continuity schema campaign > campaign.schema.json`."""
    if kind not in SCHEMA_KINDS:
        raise InputError(f"schema {kind!r}: expected one of {', '.join(SCHEMA_KINDS)}")
    if kind == "config":
        from continuity.config.schema import config_schema

        print_json(config_schema())
        return
    print_json(file_schema(kind))


def file_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a campaign file or a playbook, from the same pydantic models the loader validates
    with. Durations and their defaults read as a person writes them (`48h`); a campaign's moments are text
    with a time zone (`2026-11-27 00:00 Europe/Budapest` too), so no `format: date-time` an editor would
    hold against that spelling."""
    from datetime import timedelta

    from pydantic.json_schema import GenerateJsonSchema

    from continuity.config.schema import SCHEMA_DIALECT, spell_duration

    class Generator(GenerateJsonSchema):
        def encode_default(self, dft: Any) -> Any:
            return spell_duration(dft) if isinstance(dft, timedelta) else super().encode_default(dft)

    if kind == "campaign":
        from continuity.campaigns.model import Campaign as model
    else:
        from continuity.config.models import Playbook as model  # type: ignore[assignment]
    doc = model.model_json_schema(mode="validation", schema_generator=Generator)

    def relax(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("format") == "date-time":
                del node["format"]
                node.setdefault("description", "a date and time with its time zone: 2026-11-27T00:00:00+01:00 "
                                               "or 2026-11-27 00:00 Europe/Budapest")
            for value in node.values():
                relax(value)
        elif isinstance(node, list):
            for value in node:
                relax(value)

    relax(doc)
    return {"$schema": SCHEMA_DIALECT, **doc, "title": f"continuity {kind}"}
