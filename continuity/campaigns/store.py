"""Campaign runs and their versions in the store (tables of migration 4).

A run is one occurrence of a campaign on the calendar (a recurring campaign has one run per year); a version
is a snapshot of the campaign file as registered or updated. Runs point at the version they use, so what
staff and customers see only changes through `campaign update`, which records what changed.

The statements and the row records are the store's (continuity/store/campaigns.py); these functions are the
campaign code's names for them, and this module keeps the rules of the run states.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from continuity.store.campaigns import ACTIVE, CampaignRun, CampaignVersion

if TYPE_CHECKING:
    from continuity.store.protocol import Store

__all__ = [
    "ACTIVE", "TRANSITIONS", "CampaignRun", "CampaignVersion", "get_run", "get_version", "insert_run",
    "insert_version", "latest_run", "runs", "set_run", "versions",
]

# Run states and the moves between them (the rules as data):
#   registered ─opens_at─► briefed ─start─► live ─end─► ended      (a recurring run then plans the next one)
#       │                     │              └─cancel─► cancelled
#       └────────cancel───────┴─────────────► cancelled
#   registered ─end passed before it could open (nothing ran)─► ended
# (ACTIVE, the states of a run still to come or going on, is defined with the records.)
TRANSITIONS: dict[str, frozenset[str]] = {
    "registered": frozenset({"briefed", "cancelled", "ended"}),
    "briefed": frozenset({"live", "cancelled", "ended"}),
    "live": frozenset({"ended", "cancelled"}),
    "ended": frozenset(),
    "cancelled": frozenset(),
}


def runs(store: Store, *, include_finished: bool = False, name: str | None = None) -> list[CampaignRun]:
    """Active runs (every run with `include_finished`), of one campaign if `name` is given, by start."""
    return store.campaign_runs(states=None if include_finished else ACTIVE, name=name)


def latest_run(store: Store, name: str) -> CampaignRun | None:
    return store.latest_campaign_run(name)


def get_run(store: Store, run_id: int) -> CampaignRun | None:
    return store.get_campaign_run(run_id)


def insert_run(store: Store, *, name: str, run: int, version: int, starts_at: datetime, ends_at: datetime,
               opens_at: datetime, created_by: str, created_at: datetime) -> int:
    return store.insert_campaign_run(name=name, run=run, version=version, starts_at=starts_at, ends_at=ends_at,
                                     opens_at=opens_at, created_by=created_by, created_at=created_at)


def set_run(store: Store, run_id: int, *, at: datetime, expect: tuple[str, ...] | None = None,
            **fields: Any) -> bool:
    """Update a run; with `expect`, only while it is still in one of those states (two processes advancing
    the same clock move it once)."""
    return store.set_campaign_run(run_id, at=at, expect=expect, **fields)


def insert_version(store: Store, *, name: str, created_by: str, created_at: datetime, source: str,
                   snapshot: dict[str, Any], changes: list[str]) -> int:
    """Store a new snapshot; returns its version number (1, 2, … per campaign name)."""
    return store.insert_campaign_version(name=name, created_by=created_by, created_at=created_at, source=source,
                                         snapshot=snapshot, changes=changes)


def get_version(store: Store, name: str, version: int) -> CampaignVersion:
    found = store.get_campaign_version(name, version)
    assert found is not None, f"campaign {name} has no version {version}"
    return found


def versions(store: Store, name: str) -> list[CampaignVersion]:
    return store.campaign_versions(name)
