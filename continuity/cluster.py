"""Who leads: a daemon's seat in its cluster, and what `continuity cluster` and /metrics show of it.

On a PostgreSQL store any number of daemons share the store; one leads (runs the scheduler, opens and closes
situations, sends) and the others follow (probe, serve pages and the API) until the leader's lock is gone. How
the lock and the lease's fencing epoch make two leaders impossible is told in store/pg_cluster.py. A SQLite
store is one node's alone: its daemon always leads and there is no cluster to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from continuity import __version__
from continuity.store.protocol import Store


class Seat(Protocol):
    """`poll()` (from a worker thread, about every second): the epoch this node leads under, or None."""

    node: str
    last_error: str | None

    def poll(self, outgoing: list[Any] | None = None) -> int | None: ...

    def release(self) -> None: ...


class Solo:
    """The only node of a store nobody else shares: it leads, with no epoch to fence."""

    clustered = False

    def __init__(self, node: str) -> None:
        self.node = node
        self.last_error: str | None = None

    def poll(self, outgoing: list[Any] | None = None) -> int | None:
        return 0

    def release(self) -> None:
        return None


def seat_for(store: Store, node: str, vantage: str, failover: timedelta) -> Any:
    """The store's seat for a cluster node (PostgreSQL), or Solo for a store of one daemon's own."""
    seat = store.leadership(node=node, vantage=vantage, version=__version__, failover=failover.total_seconds())
    return seat if seat is not None else Solo(node)


@dataclass(frozen=True)
class NodeView:
    name: str
    vantage: str
    version: str
    started_at: datetime
    last_seen: datetime
    leading: bool
    alive: bool


@dataclass(frozen=True)
class ClusterView:
    clustered: bool
    leader: str | None
    epoch: int | None
    since: datetime | None
    renewed_at: datetime | None
    nodes: list[NodeView]

    def as_dict(self) -> dict[str, Any]:
        def iso(when: datetime | None) -> str | None:
            return when.isoformat() if when else None

        return {"cluster": self.clustered, "leader": self.leader, "epoch": self.epoch, "since": iso(self.since),
                "renewed_at": iso(self.renewed_at),
                "nodes": [{"name": n.name, "vantage": n.vantage, "version": n.version,
                           "started_at": iso(n.started_at), "last_seen": iso(n.last_seen), "leading": n.leading,
                           "alive": n.alive} for n in self.nodes]}


# A node that has not touched its row for this long is shown as gone (it polls every second).
GONE_AFTER = timedelta(seconds=15)


def cluster_view(store: Store) -> ClusterView:
    """The nodes and the leader as the shared store knows them (by the database's clock, which every node's
    lease and row are written with); a SQLite store has no cluster."""
    state = store.cluster_state()
    if state is None:
        return ClusterView(False, None, None, None, None, [])
    lease, rows, now = state
    leader = lease.leader if lease is not None and lease.held else None
    nodes = [NodeView(n.name, n.vantage, n.version, n.started_at, n.last_seen, n.name == leader,
                      now - n.last_seen <= GONE_AFTER) for n in rows]
    return ClusterView(True, leader, lease.epoch if lease else None, lease.since if lease and leader else None,
                       lease.renewed_at if lease and leader else None, nodes)


__all__ = ["ClusterView", "NodeView", "Seat", "Solo", "cluster_view", "seat_for"]
