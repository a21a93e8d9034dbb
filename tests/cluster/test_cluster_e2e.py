"""Two daemons on one PostgreSQL, as real processes: one leads, the other probes and serves; a channel's
failure opens one outage whose every message goes out once; the leader SIGKILLed, the other leads within
`cluster.failover` and closes the outage when the peer recovers."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg

from tests.cluster.kit import Hooks, Node, Peer, cli, write_config
from tests.crashkit import SmtpServer, wait_for


def rows(url: str, sql: str) -> list[dict[str, object]]:
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return list(conn.execute(sql).fetchall())


def leader_of(nodes: list[Node]) -> Node | None:
    leading = [n for n in nodes if n.running and n.role() == "leader"]
    assert len(leading) <= 1, [n.name for n in leading]
    return leading[0] if leading else None


def test_two_nodes_one_outage_each_message_once_and_failover(tmp_path: Path, store_url: str, peer: Peer,
                                                             smtp: SmtpServer, hooks: Hooks) -> None:
    config = write_config(tmp_path, store_url, peer.port, smtp.port, hooks.port)
    nodes = [Node(config, "alpha"), Node(config, "beta")]
    for n in nodes:
        n.start()
    try:
        first = wait_for(lambda: leader_of(nodes), 20, "a leader")
        other = next(n for n in nodes if n is not first)
        wait_for(lambda: other.role() == "follower", 20, "the other node to follow")
        shown = cli(config, "cluster", "--json")
        assert shown.returncode == 0, shown.stderr
        view = json.loads(shown.stdout)
        assert view["leader"] == first.name and sorted(n["name"] for n in view["nodes"]) == ["alpha", "beta"]
        assert view["epoch"] >= 1
        text = cli(config, "cluster")
        assert f"Leader: {first.name}" in text.stdout and "follower" in text.stdout

        peer.failing = True  # both nodes see it; only the leader opens the outage
        wait_for(lambda: len(smtp.recorder.messages) >= 3, 30, "the runbook and both reminders by mail")
        wait_for(lambda: len(hooks.counts()) >= 2, 30, "the notice and the banner by webhook")
        sits = rows(store_url, "SELECT * FROM situations")
        assert len(sits) == 1 and sits[0]["state"] == "open"

        first.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: other.role() == "leader", 12, "the follower to lead after the leader's SIGKILL")
        took = time.monotonic() - killed_at
        assert took <= 10, took
        peer.failing = False
        wait_for(lambda: rows(store_url, "SELECT state FROM situations")[0]["state"] == "closed", 30,
                 "the new leader to close the outage")
        wait_for(lambda: not rows(store_url, "SELECT id FROM steps WHERE state IN ('planned', 'running')"), 30,
                 "every step of the outage to run")

        steps = rows(store_url, "SELECT * FROM steps ORDER BY id")
        assert {r["state"] for r in steps} <= {"done", "undone", "cancelled", "uncertain"}, steps
        ids = Counter(smtp.recorder.message_ids())
        assert all(n == 1 for n in ids.values()), ids  # no message twice
        mails = [r for r in steps if r["sink"] == "staff_mail" and r["state"] == "done"]
        assert len(ids) == len(mails) and {r["step_id"] for r in mails} >= {"staff-runbook", "staff-resolved"}
        delivered = {key for key, _ in hooks.counts()}
        assert {r["key"] for r in steps if r["sink"] == "hook" and r["state"] in ("done", "undone")} <= delivered
        assert ("website-banner" in {r["step_id"] for r in steps if r["phase"] == "undo"})  # switched off too

        metrics = cli(config, "cluster", "--json")
        assert json.loads(metrics.stdout)["leader"] == other.name
        log = "\n".join(json.loads(line).get("event", "") for line in other.log_text().splitlines()
                        if line.startswith("{"))
        assert "cluster.leading" in log
    finally:
        for n in nodes:
            if n.running:
                n.kill(signal.SIGTERM)
