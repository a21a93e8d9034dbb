"""Read-only views of the store as plain data: status, history, a situation's report.

The CLI prints them (table or --json) and the daemon's HTTP endpoint will serve the same dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from continuity.durations import format_duration
from continuity.owners import owner_alive
from continuity.store.records import SituationRecord, StepRecord
from continuity.store.sqlite import SqliteStore

ATTENTION = ("failed", "uncertain")


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def interrupted(row: StepRecord) -> bool:
    """A row left `running` by a process that is gone (a crash, a kill): visible at once, before the next
    command's recovery gets to it."""
    return row.state == "running" and not owner_alive(row.owner)


def recovery(row: StepRecord) -> str:
    """What the next `tick`, command or daemon start does with an interrupted row."""
    if row.idempotent:
        return "interrupted by a crash: runs again with the next tick or the daemon (safe to repeat)"
    return ("interrupted by a crash: the next tick marks it uncertain (it may have gone out) for a person to "
            "settle with `continuity settle ID sent|resend`")


def needs_attention(row: StepRecord) -> bool:
    return row.state in ATTENTION or interrupted(row)


def step_dict(row: StepRecord) -> dict[str, Any]:
    gone = interrupted(row)
    return {
        "id": row.id,
        "step": row.step_id,
        "phase": row.phase,
        "occurrence": row.occurrence,
        "action": row.action,
        "sink": row.sink,
        "state": row.state,
        "due_at": _iso(row.due_at),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "next_retry_at": _iso(row.next_retry_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "late": row.late,
        "detail": row.detail,
        "owner": row.owner,
        "interrupted": gone,
        "recovery": recovery(row) if gone else None,
    }


def switched_on(rows: list[StepRecord]) -> list[StepRecord]:
    """Reversible steps currently in effect: applied and not yet switched off (latest row per step+sink)."""
    latest: dict[tuple[str, str], StepRecord] = {}
    for row in rows:
        if row.reversible and row.phase in ("open", "update") and row.state in ("done", "uncertain", "undone"):
            latest[(row.step_id, row.sink)] = row
    return [r for r in latest.values() if r.state in ("done", "uncertain")]


def situation_dict(sit: SituationRecord, rows: list[StepRecord], now: datetime) -> dict[str, Any]:
    end = sit.closed_at or now
    return {
        "id": sit.id,
        "kind": sit.kind,
        "channel": sit.channel,
        "playbook": sit.playbook,
        "state": sit.state,
        "source": sit.source,
        "opened_by": sit.opened_by,
        "reason": sit.reason,
        "eta": _iso(sit.eta),
        "note": sit.note,
        "opened_at": _iso(sit.opened_at),
        "closed_at": _iso(sit.closed_at),
        "closed_by": sit.closed_by,
        "duration": format_duration(end - sit.opened_at),
        "duration_seconds": int((end - sit.opened_at).total_seconds()),
        "switched_on": [{"step": r.step_id, "sink": r.sink, "action": r.action} for r in switched_on(rows)],
        "attention": [step_dict(r) for r in rows if needs_attention(r)],
        "steps": [step_dict(r) for r in rows],
    }


def status_view(store: SqliteStore, now: datetime) -> dict[str, Any]:
    situations = []
    for sit in store.open_situations():
        situations.append(situation_dict(sit, store.steps_for(sit.id), now))
    # Closed situations with something still on, still pending, or waiting for an operator: show them too.
    lingering = []
    for sit in store.situations_since(datetime.min.replace(tzinfo=now.tzinfo)):
        if sit.is_open:
            continue
        rows = store.steps_for(sit.id)
        on = switched_on(rows)
        pending = [r for r in rows if r.state in ("planned", "running") or r.awaiting_retry]
        if on or pending or any(needs_attention(r) for r in rows):
            lingering.append(situation_dict(sit, rows, now))
    next_due = store.next_due()
    return {
        "now": now.isoformat(),
        "open": situations,
        "closed_with_pending_work": lingering,
        "next_due": _iso(next_due),
    }


def history_view(store: SqliteStore, since: datetime, now: datetime) -> list[dict[str, Any]]:
    out = []
    for sit in store.situations_since(since):
        d = situation_dict(sit, store.steps_for(sit.id), now)
        d.pop("steps")
        out.append(d)
    return out


def report_view(store: SqliteStore, situation_id: int, now: datetime) -> dict[str, Any] | None:
    sit = store.get_situation(situation_id)
    if sit is None:
        return None
    rows = store.steps_for(sit.id)
    d = situation_dict(sit, rows, now)
    timeline: list[dict[str, Any]] = []
    for ev in store.events_for(sit.id):
        timeline.append({"at": ev.at.isoformat(), "event": ev.kind, "text": ev.message})
    for row in rows:
        # An undone row is shown when it went on (its undo row shows the switch-off); a row that failed and was
        # then cancelled by the close still shows its failure.
        state = {"undone": "done"}.get(row.state, row.state)
        if row.state == "cancelled" and row.attempts > 0:
            state = "failed"
        if row.finished_at and state in ("done", "failed", "uncertain"):
            verb = {"undo": "switched off"}.get(row.phase, row.action)
            text = f"{row.step_id} ({verb}) → {row.sink}: {state}"
            if row.attempts > 1:
                text += f" after {row.attempts} attempts"
            if row.late:
                text += " (late)"
            if row.last_error and state != "done":
                text += f" — {row.last_error}"
            if row.state == "cancelled":
                text += "; not retried: the situation closed"
            timeline.append({"at": row.finished_at.isoformat(), "event": f"step-{state}", "text": text})
    timeline.sort(key=lambda e: e["at"])
    for e in timeline:
        offset = datetime.fromisoformat(e["at"]) - sit.opened_at
        e["offset"] = "+" + format_duration(offset)
    d["timeline"] = timeline
    return d


def report_markdown(rep: dict[str, Any]) -> str:
    lines = [
        f"# Situation #{rep['id']}: {rep['kind']} of {rep['channel']}",
        "",
        f"- **Reason:** {rep['reason']}",
        f"- **Opened:** {rep['opened_at']} by {rep['opened_by']} ({rep['source']})",
        f"- **ETA:** {rep['eta'] or 'not given'}",
        f"- **Closed:** {rep['closed_at'] or 'still open'}" + (f" by {rep['closed_by']}" if rep["closed_by"] else ""),
        f"- **Duration:** {rep['duration']}",
    ]
    if rep["note"]:
        lines.append(f"- **Note:** {rep['note']}")
    steps = rep["steps"]
    done = sum(1 for s in steps if s["state"] in ("done", "undone"))
    lines += [f"- **Steps:** {done} done, {len(rep['attention'])} need attention, {len(steps)} in the ledger", "",
              "## Timeline", "", "| time | offset | event |", "| --- | --- | --- |"]
    for e in rep["timeline"]:
        lines.append(f"| {e['at']} | {e['offset']} | {e['text'].replace('|', '/')} |")
    if rep["attention"]:
        lines += ["", "## Needs attention", ""]
        for s in rep["attention"]:
            state = "interrupted" if s["interrupted"] else s["state"]
            lines.append(f"- step {s['id']} `{s['step']}` → {s['sink']}: **{state}** — "
                         f"{s['recovery'] or s['last_error']}")
    return "\n".join(lines) + "\n"
