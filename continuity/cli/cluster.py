"""cluster: which daemons share the store, and which of them leads."""

from __future__ import annotations

from typing import Annotated

import typer

from continuity.cli import app
from continuity.cli.common import console, esc, guarded, load, print_json, store_for


@app.command("cluster")
@guarded
def cluster(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output: `leader` (a node's name or "
                                          "null), `epoch`, `nodes` (each with `name`, `vantage`, `version`, "
                                          "`last_seen`, `leading`, `alive`).")] = False,
) -> None:
    """Show the daemons that share this store (`continuity daemon --node NAME` on each host) and the leader.

    The leader runs the scheduler and sends; the others probe, serve the pages and the API, and one of them
    takes over within `cluster.failover` when the leader goes. The epoch rises with every change of leader: a
    node that led under an older one can record and send nothing. A SQLite store has no cluster: its one
    daemon always leads.
    """
    from continuity.cluster import cluster_view

    loaded = load()
    store = store_for(loaded)
    try:
        view = cluster_view(store)
    finally:
        store.close()
    if as_json:
        print_json(view.as_dict())
        return
    out = console()
    if not view.clustered:
        out.print("No cluster: the store is a SQLite file, which one daemon uses alone (it always leads). "
                  "Several nodes need a postgresql:// store.url.")
        return
    if view.leader is None:
        out.print("[bold]No node leads right now[/bold] (none running, or a failover is under way).")
    else:
        since = view.since.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if view.since else "?"
        out.print(f"Leader: [bold]{esc(view.leader)}[/bold] (epoch {view.epoch}, since {since})")
    if not view.nodes:
        out.print("No node has joined yet: start `continuity daemon --node NAME` on each host.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("node", "vantage", "version", "role", "last seen"):
        table.add_column(col)
    for n in view.nodes:
        role = "leader" if n.leading else ("follower" if n.alive else "gone")
        table.add_row(esc(n.name), esc(n.vantage), esc(n.version), role,
                      n.last_seen.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"))
    out.print(table)
