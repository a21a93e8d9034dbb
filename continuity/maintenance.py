"""Planned maintenance windows: announced ahead, a `maintenance` situation while they last, and no outage
opened for failures inside them. The windows live in the store; `advance` moves them along the clock and is
called by `tick` and by the daemon."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from continuity import limits
from continuity.errors import InputError
from continuity.store.records import MaintenanceRecord

if TYPE_CHECKING:
    from continuity.engine import Engine

PLAYBOOK = "maintenance"


def add_window(engine: Engine, channel: str, *, start: datetime, end: datetime, reason: str,
               notice: timedelta, by: str) -> MaintenanceRecord:
    engine.check_channel(channel)
    limits.check_length("--reason", reason, limits.REASON)
    now = engine.clock.now()
    if not reason.strip():
        raise InputError("--reason is required: staff and customers are told what the maintenance is for")
    if end <= start:
        raise InputError("--end must be after --start")
    if end <= now:
        raise InputError("the window is already over (--end is in the past)")
    engine.playbook_named(PLAYBOOK)  # fail now, not at the start of the window, if it is missing or broken
    with engine.store.transaction():
        for other in engine.store.maintenance():
            if other.channel == channel and other.starts_at < end and start < other.ends_at:
                raise InputError(f"overlaps maintenance #{other.id} of {channel} "
                                 f"({other.starts_at.isoformat()} – {other.ends_at.isoformat()})")
        window_id = engine.store.insert_maintenance(channel=channel, starts_at=start, ends_at=end,
                                                    notice_s=int(notice.total_seconds()), reason=reason,
                                                    created_by=by, created_at=now)
    record = engine.store.get_maintenance(window_id)
    assert record is not None
    return record


def cancel_window(engine: Engine, window_id: int, by: str) -> MaintenanceRecord:
    record = engine.store.get_maintenance(window_id)
    if record is None:
        raise InputError(f"no maintenance window #{window_id}")
    if record.state not in ("scheduled", "announced", "active"):
        raise InputError(f"maintenance #{window_id} is already {record.state}")
    if record.state in ("announced", "active"):
        engine.close(record.channel, by=by, note="maintenance cancelled", kind="maintenance")
    with engine.store.transaction():
        engine.store.set_maintenance(window_id, state="cancelled")
    updated = engine.store.get_maintenance(window_id)
    assert updated is not None
    return updated


def active_window(engine: Engine, channel: str) -> MaintenanceRecord | None:
    """The window the channel is in now. A window counts from its start even before `advance` has marked it
    active (its job may run a moment later): a probe failure in its first second must not open an outage."""
    now = engine.clock.now()
    for w in engine.store.maintenance():  # scheduled, announced or active: not ended or cancelled
        if w.channel == channel and w.starts_at <= now < w.ends_at:
            return w
    return None


def next_times(engine: Engine) -> list[datetime]:
    """When windows next need attention (announcement, start, end), for the daemon's date jobs."""
    out = []
    for w in engine.store.maintenance():
        if w.state == "scheduled":
            out.append(w.starts_at - timedelta(seconds=w.notice_s))
        elif w.state == "announced":
            out += [w.starts_at, w.ends_at]
        elif w.state == "active":
            out.append(w.ends_at)
    return out


def advance(engine: Engine) -> list[tuple[str, MaintenanceRecord]]:
    """Move every window along the clock: announce it (opening its situation), start it (refreshing the notices
    so they say "in progress"), end it (closing the situation). Returns what happened, for the daemon."""
    now = engine.clock.now()
    happened: list[tuple[str, MaintenanceRecord]] = []
    for w in engine.store.maintenance():
        if w.state == "scheduled" and w.starts_at - timedelta(seconds=w.notice_s) <= now < w.ends_at:
            opened = engine.open(w.channel, kind="maintenance", reason=w.reason, eta=w.ends_at, by=w.created_by,
                                 source="maintenance", playbook=PLAYBOOK,
                                 data={"maintenance": {"id": w.id, "starts_at": w.starts_at.isoformat(),
                                                       "ends_at": w.ends_at.isoformat()}})
            with engine.store.transaction():
                engine.store.set_maintenance(w.id, state="announced", situation_id=opened.situation.id)
            w.state, w.situation_id = "announced", opened.situation.id
            happened.append(("announced", w))
        if w.state == "announced" and w.starts_at <= now < w.ends_at:
            with engine.store.transaction():
                engine.store.set_maintenance(w.id, state="active")
                if w.situation_id is not None:
                    engine.refresh(w.situation_id, "maintenance window started")
            w.state = "active"
            happened.append(("started", w))
        if w.state in ("scheduled", "announced", "active") and w.ends_at <= now:
            if w.state != "scheduled":
                engine.close(w.channel, by="maintenance", note="maintenance window ended", kind="maintenance")
            with engine.store.transaction():
                engine.store.set_maintenance(w.id, state="done")
            w.state = "done"
            happened.append(("ended", w))
    return happened
