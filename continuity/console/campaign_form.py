"""The console's "Register campaign" form: its fields turned into the same `Flags` that `campaign register`
without a file takes, so the model, the checks and the messages are the CLI's, and every error comes back
keyed by the form field it is about (shown next to it, all at once).

Title defaults to the name and the time zone to the organisation's, so Name, Starts, Ends, Terms, Channels
and the FAQ page are what marketing has to type; FAQ entries and template answers per locale still come from
a campaign file (`campaign update NAME FILE`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from continuity.errors import ContinuityError, InputError, InputErrors

if TYPE_CHECKING:
    from continuity.engine import Engine

# The CLI flag each error names → the form field it is about.
FIELD_OF_FLAG = {"--name": "name", "--title": "title", "--start": "starts", "--end": "ends", "--terms": "terms",
                 "--code": "codes", "--channel": "channels", "--load": "load", "--faq-url": "faq_url"}
FIELDS = ("name", "title", "starts", "ends", "timezone", "terms", "channels", "codes", "faq_url", "load")
LABELS = {"name": "Name", "title": "Title", "starts": "Starts", "ends": "Ends", "timezone": "Time zone",
          "terms": "Terms", "channels": "Channels", "codes": "Discount codes", "faq_url": "FAQ page",
          "load": "Expected load", "form": "Campaign"}


def _moment(value: str, tz: str) -> str | None:
    """A datetime-local value ("2026-12-01T08:00") in the chosen zone, as the campaign format writes it."""
    value = value.strip()
    if not value:
        return None
    if value.endswith("Z") or "+" in value[10:] or value[10:].count("-") or " " in value[11:]:
        return value  # already carries its offset or zone
    return f"{value.replace('T', ' ', 1)} {tz}"


def _field(error: InputError) -> str:
    loc = error.location
    flag = (loc.field or "") if loc else ""
    for prefix, name in FIELD_OF_FLAG.items():
        if flag == prefix or flag.startswith(prefix + " "):
            return name
    return "form"


def _text(value: object, locale: str) -> str:
    """A campaign text as one line of the form: itself, or the default locale's entry of a per-locale text."""
    if isinstance(value, dict):
        return str(value.get(locale) or value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def prefill(engine: Engine, snapshot: dict[str, Any]) -> dict[str, str]:
    """The edit form's fields from a stored version, in the organisation's time zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    org = engine.loaded.config.organisation

    def local(value: object) -> str:
        return datetime.fromisoformat(str(value)).astimezone(ZoneInfo(org.timezone)).strftime("%Y-%m-%dT%H:%M")

    codes = snapshot.get("codes") or []
    return {"name": str(snapshot["name"]), "title": _text(snapshot.get("title"), org.default_locale),
            "starts": local(snapshot["start"]), "ends": local(snapshot["end"]), "timezone": org.timezone,
            "terms": _text(snapshot.get("terms"), org.default_locale),
            "channels": " ".join(str(c) for c in snapshot.get("channels") or []),
            "codes": "\n".join(f"{c['code']}={_text(c.get('discount'), org.default_locale)}" for c in codes
                               if isinstance(c, dict)),
            "faq_url": _text(snapshot.get("faq_url"), org.default_locale), "load": str(snapshot.get("load") or "")}


def register_from_form(engine: Engine, form: dict[str, str], *, by: str, editing: str | None = None
                       ) -> tuple[str | None, dict[str, str], list[str]]:
    """Register the campaign the form describes, or with `editing` store a new version of that campaign with
    only the fields the person changed (per-locale texts, FAQ and answers they did not touch are kept):
    (its name, {}, warnings), or (None, errors by field, [])."""
    from continuity.campaigns.flags import Flags, from_flags, over_version
    from continuity.campaigns.phases import advance, find_run, register, update

    snapshot: dict[str, Any] = {}
    if editing is not None:
        run = find_run(engine, editing)
        version = engine.store.get_campaign_version(run.name, run.version)
        assert version is not None
        snapshot = version.snapshot
        before = prefill(engine, snapshot)
        # Unchanged fields are not given: the stored value (perhaps per locale) stays as it is.
        form = {k: ("" if before.get(k, "") == v.strip() and k != "timezone" else v) for k, v in form.items()}
        form["name"] = editing
        if not form.get("starts") and not form.get("ends"):
            form["timezone"] = ""

    errors: dict[str, str] = {}
    tz = form.get("timezone", "").strip() or engine.loaded.config.organisation.timezone
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        errors["timezone"] = f"{tz!r} is not a time zone; use an IANA name like Europe/Budapest"
        tz = engine.loaded.config.organisation.timezone
    name = form.get("name", "").strip() or None
    codes = [line.strip() for line in form.get("codes", "").splitlines() if line.strip()]
    channels = [c.strip() for c in form.get("channels", "").replace(",", " ").split() if c.strip()]
    flags = Flags(name=name, title=form.get("title", "").strip() or name, start=_moment(form.get("starts", ""), tz),
                  end=_moment(form.get("ends", ""), tz), terms=form.get("terms", "").strip() or None, codes=codes,
                  channels=channels, load=form.get("load", "").strip() or None,
                  faq_url=form.get("faq_url", "").strip() or None)
    if editing is None:
        for key, flag_value in (("starts", flags.start), ("ends", flags.end)):
            if flag_value is None:
                errors[key] = "Required: the date and time."

    def collect(exc: ContinuityError) -> None:
        found = exc.errors if isinstance(exc, InputErrors) else [exc]
        for e in found:
            key = _field(e) if isinstance(e, InputError) else "form"
            if key in ("starts", "ends") and key in errors:
                continue
            message = "Required." if e.message.startswith("required without a campaign FILE") else e.message
            errors[key] = f"{errors[key]} {message}" if key in errors else message

    try:
        if editing is not None:
            flags.name = None
            if flags.title == editing and not form.get("title"):
                flags.title = None
            source = over_version(snapshot, flags)
        else:
            source = from_flags(flags)
    except InputErrors as exc:
        collect(exc)
        return None, errors, []
    if errors:
        return None, errors, []
    try:
        result = update(engine, editing, source, by=by) if editing is not None else register(engine, source, by=by)
    except ContinuityError as exc:
        collect(exc)
        return None, errors, []
    advance(engine, result.run.name)
    find_run(engine, result.run.name)
    return result.run.name, {}, list(result.warnings)


def blank(engine: Engine) -> dict[str, Any]:
    return {"timezone": engine.loaded.config.organisation.timezone}
