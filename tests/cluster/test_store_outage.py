"""PostgreSQL taken away under a running cluster and given back: the leader stops sending (it cannot
record), says so in its log and /healthz, every node reconnects when the database is back, and the outage
that changed meanwhile is closed with every message sent once."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg

from tests.cluster.kit import Hooks, Node, Peer, check_delivered_once, write_config
from tests.crashkit import SmtpServer, wait_for


def one_leader(nodes: list[Node]) -> Node | None:
    leading = [n for n in nodes if n.running and n.role() == "leader"]
    assert len(leading) <= 1, [n.name for n in leading]
    return leading[0] if leading else None


def situations(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT state FROM situations ORDER BY id").fetchall()]


def test_database_restarted_under_the_cluster(tmp_path: Path, store_url: str, peer: Peer, smtp: SmtpServer,
                                              hooks: Hooks) -> None:
    from tests.store.pgserver import server

    config = write_config(tmp_path, store_url, peer.port, smtp.port, hooks.port)
    nodes = [Node(config, "alpha"), Node(config, "beta")]
    for n in nodes:
        n.start()
    srv = server()
    try:
        wait_for(lambda: one_leader(nodes), 30, "a leader")
        peer.failing = True
        wait_for(lambda: situations(store_url) == ["open"], 30, "the outage to open")
        wait_for(lambda: len(smtp.recorder.messages) >= 3, 30, "the outage's mails")
        srv.stop("fast")  # the database is gone (a restart): what it acknowledged stays committed
        try:
            def unreachable() -> bool:
                bodies = [n.healthz() for n in nodes]
                return all(b is not None and b.get("store", "").startswith("unreachable") and not b["ok"]
                           for b in bodies)

            wait_for(unreachable, 15, "every node to say in /healthz that the store is unreachable")
            assert one_leader(nodes) is None  # nobody leads while nothing can be recorded
            peer.failing = False  # the peer recovers while the database is away
            sent_while_down = len(smtp.recorder.messages)
            time.sleep(2)
            assert len(smtp.recorder.messages) == sent_while_down  # nothing is sent that cannot be recorded
        finally:
            srv.start()
        wait_for(lambda: one_leader(nodes), 20, "a leader once the database is back")
        wait_for(lambda: situations(store_url) == ["closed"], 30, "the outage to close after the database's return")
        with psycopg.connect(store_url) as conn:
            wait_for(lambda: not conn.execute("SELECT id FROM steps WHERE state IN ('planned', 'running')")
                     .fetchall(), 30, "every step to run")
        check_delivered_once(store_url, Counter(smtp.recorder.message_ids()), set(smtp.recorder.arrived),
                             hooks.counts())
        events = [json.loads(line).get("event") for n in nodes for line in n.log_text().splitlines()
                  if line.startswith("{")]
        assert "cluster.following" in events or "cluster.store" in events  # the log says so
    finally:
        for n in nodes:
            if n.running:
                n.kill(signal.SIGTERM)
