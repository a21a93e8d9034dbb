"""The console's maintenance windows (plan, list, cancel: continuity.maintenance, as `continuity maintenance`
does) and the auto-responder's state per mailbox (read only, from the same queries as `autoreply status`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from continuity.console.views import staff_time
from continuity.durations import parse_duration, parse_eta
from continuity.errors import ContinuityError, InputError

if TYPE_CHECKING:
    from continuity.engine import Engine
    from continuity.public.web import Served


def windows(daemon: Served) -> list[dict[str, Any]]:
    return [{"id": w.id, "channel": w.channel, "state": w.state, "reason": w.reason, "created_by": w.created_by,
             "starts_text": staff_time(daemon.loaded, w.starts_at),
             "ends_text": staff_time(daemon.loaded, w.ends_at),
             "situation_id": w.situation_id, "cancellable": w.state in ("scheduled", "announced", "active")}
            for w in daemon.store.maintenance(include_ended=False)]


def _moment(value: str, tz: str, now: datetime, option: str) -> datetime | None:
    value = value.strip()
    if len(value) == 16 and value[10] == "T":  # a datetime-local value: the organisation's local time
        value = value + ":00"
    return parse_eta(value or None, now, tz, option=option)


def plan_window(engine: Engine, form: dict[str, str], *, by: str) -> tuple[int | None, dict[str, str]]:
    """Add the window the form describes: (its id, {}) or (None, errors by field), every field checked."""
    from continuity.maintenance import add_window

    now = engine.clock.now()
    tz = engine.loaded.config.organisation.timezone
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    channel = form.get("channel", "")
    if channel not in engine.loaded.config.channels:
        errors["channel"] = "Choose one of the configured channels."
    for key, option in (("start", "Start"), ("end", "End")):
        try:
            values[key] = _moment(form.get(key, ""), tz, now, option)
            if values[key] is None:
                errors[key] = "Required: the date and time."
        except ContinuityError as exc:
            errors[key] = str(exc)
    if not form.get("reason", "").strip():
        errors["reason"] = "Say what is being done (staff and customers are told)."
    try:
        values["notice"] = parse_duration(form.get("notice", "").strip() or "0s")
    except ValueError as exc:
        errors["notice"] = f"Notice: {exc}"
    if errors:
        return None, errors
    try:
        window = add_window(engine, channel, start=values["start"], end=values["end"], reason=form["reason"].strip(),
                            notice=values["notice"], by=by)
    except InputError as exc:
        text = str(exc)
        field = next((f for f, words in (("end", ("end",)), ("start", ("start", "overlap")), ("reason", ("reason",)))
                      if any(w in text.lower() for w in words)), "form")
        return None, {field: text}
    return window.id, {}


def autoreply_boxes(daemon: Served) -> list[dict[str, Any]]:
    from continuity.autoreply.state import active_parts, known_mailboxes, mailbox_summary
    from continuity.sinks.autoreply import AutoreplySettings

    configured = {name: inst.settings for name, inst in daemon.loaded.sinks.items()
                  if isinstance(inst.settings, AutoreplySettings)}
    out = []
    for name in [*configured, *(m for m in known_mailboxes(daemon.store) if m not in configured)]:
        settings = configured.get(name)
        parts = active_parts(daemon.store, name)
        summary = mailbox_summary(daemon.store, name)
        counts = summary["counts"]
        out.append({"name": name, "address": settings.address if settings else None, "on": bool(parts),
                    "situations": [{"id": p.situation.id, "kind": p.situation.kind, "channel": p.situation.channel}
                                   for p in parts],
                    "answered": counts.get("sent", 0), "skipped": counts.get("skipped", 0),
                    "failed": counts.get("failed", 0), "uncertain": counts.get("uncertain", 0),
                    "skipped_reasons": summary["skipped_reasons"],
                    "last_error": summary["last_error"] or summary["last_send_error"],
                    "last_error_text": staff_time(daemon.loaded, summary["last_error_at"])})
    return out
