"""The sample situation previews and `validate` render templates with, and the status page shows as its
example: one definition, so every preview says the same."""

from __future__ import annotations

from datetime import datetime, timedelta

from continuity.store.records import SituationRecord


def sample_situation(channel: str, now: datetime, *, reason: str = "SIP trunk down at the provider",
                     eta: datetime | None = None, by: str = "on-call", closed: bool = False,
                     playbook: str = "") -> SituationRecord:
    return SituationRecord(
        id=0, kind="outage", channel=channel, playbook=playbook, state="closed" if closed else "open",
        source="cli", opened_by=by, reason=reason, eta=eta, note="Provider fixed the trunk" if closed else None,
        revision=0, opened_at=now, closed_at=now + timedelta(hours=1, minutes=25) if closed else None,
        closed_by=by if closed else None,
    )
