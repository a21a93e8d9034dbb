"""Rows of the store as typed records, and the ledger's state table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# Ledger states and the moves allowed between them (h11-style: the rules are data, tested directly).
#   planned ─claim─► running ─ok─► done ─undo done─► undone
#      │               ├─error─► failed ─retry due─► running
#      │               └─owner died (sink not idempotent)─► uncertain ─undo done─► undone
#      └─situation closed before it ran─► cancelled          (failed awaiting retry ─close─► cancelled)
STATES = ("planned", "running", "done", "failed", "uncertain", "cancelled", "undone", "skipped")
TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"running", "cancelled", "skipped"}),
    "running": frozenset({"done", "failed", "planned", "uncertain"}),
    "failed": frozenset({"running", "cancelled"}),
    "done": frozenset({"undone"}),
    "uncertain": frozenset({"undone", "done", "failed"}),
    "cancelled": frozenset(),
    "undone": frozenset(),
    "skipped": frozenset(),
}
FINAL = frozenset({"done", "cancelled", "undone", "skipped"})


def can_move(src: str, dst: str) -> bool:
    return dst in TRANSITIONS.get(src, frozenset())


@dataclass
class SituationRecord:
    id: int
    kind: str
    channel: str
    playbook: str
    state: str
    source: str
    opened_by: str
    reason: str
    eta: datetime | None
    note: str | None
    revision: int
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.state == "open"


@dataclass
class StepRecord:
    id: int
    situation_id: int
    key: str
    phase: str
    step_id: str
    occurrence: int
    action: str
    sink: str
    template: str
    reversible: bool
    idempotent: bool
    every_s: int | None
    undo_of: int | None
    due_at: datetime
    state: str
    attempts: int
    last_error: str | None
    next_retry_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None
    late: bool
    detail: str | None

    @property
    def awaiting_retry(self) -> bool:
        return self.state == "failed" and self.next_retry_at is not None


@dataclass
class EventRecord:
    id: int
    situation_id: int
    at: datetime
    kind: str
    message: str


@dataclass
class MaintenanceRecord:
    id: int
    channel: str
    starts_at: datetime
    ends_at: datetime
    notice_s: int
    reason: str
    state: str
    situation_id: int | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class SharedObservation:
    """A cluster's shared observation (store/pg_cluster.py): what one node saw, its own probes of a channel at
    its vantage or an agent's report it took (the agent posted to that node). `channel` "" is a heartbeat
    only: the vantage was heard at `at`."""

    node: str
    vantage: str
    channel: str
    status: str
    reason: str
    results: list[dict[str, Any]]
    at: datetime


class Fence:
    """A cluster's fence (store/pg_cluster.py): the epoch a store handle's writes must find in the lease (None:
    not a leader, nothing to check). Shared by a handle and the handles it reopens (the auto-responder's), so
    a lost lock stops them all."""

    def __init__(self) -> None:
        self.epoch: int | None = None


@dataclass(frozen=True)
class NodeRow:
    """A daemon of a cluster, as its own poll last wrote it (by the database's clock)."""

    name: str
    vantage: str
    version: str
    started_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class LeaseRow:
    """Who leads a cluster, under which epoch, since when; `held` while its lock is held by a live session."""

    epoch: int
    leader: str | None
    since: datetime | None
    renewed_at: datetime | None
    held: bool  # the advisory lock is held by a live session now


class LeaderSeat(Protocol):
    """A daemon's seat in a cluster (store/pg_cluster.py Leadership): `poll()`, about every second from a
    worker thread, shares `outgoing` observations and returns the epoch this node leads under, or None."""

    clustered: bool
    node: str
    epoch: int | None
    fence: Fence
    last_error: str | None
    nodes_alive: int
    incoming: list[SharedObservation]

    def poll(self, outgoing: list[SharedObservation] | None = None) -> int | None: ...

    def release(self) -> None: ...
