"""The cluster's commands and edges through the real CLI: `cluster` on SQLite and on PostgreSQL, bad
`--node` and `cluster.failover` values, `outage --dry-run` on a PostgreSQL store recording nothing, and an
outage declared through a follower's API sent by the leader."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import psycopg

from tests.cluster.kit import Hooks, Node, Peer, cli, write_config
from tests.crashkit import SmtpServer, wait_for


def test_cluster_on_sqlite_says_there_is_none(tmp_path: Path) -> None:
    config = tmp_path / "continuity.yaml"
    config.write_text("organisation: {name: Shop, default_locale: en, locales: [en]}\n"
                      "channels: {phone: {contact: '+36 1 234 5678'}}\n", encoding="utf-8")
    shown = cli(config, "cluster", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"cluster": False, "leader": None, "epoch": None, "since": None,
                                        "renewed_at": None, "nodes": []}
    text = cli(config, "cluster")
    assert text.returncode == 0 and "No cluster" in text.stdout and "postgresql://" in text.stdout
    bad = cli(config, "daemon", "--node", "Not A Name")
    assert bad.returncode == 2 and "--node" in bad.stderr
    config.write_text(config.read_text() + "cluster: {failover: 1s}\n", encoding="utf-8")
    refused = cli(config, "validate")
    assert refused.returncode == 2 and "cluster.failover" in refused.stderr and "at least 2s" in refused.stderr


def test_dry_run_on_postgresql_records_nothing(tmp_path: Path, store_url: str, peer: Peer, smtp: SmtpServer,
                                               hooks: Hooks) -> None:
    config = write_config(tmp_path, store_url, peer.port, smtp.port, hooks.port)
    shown = cli(config, "outage", "chat", "--reason", "widget down", "--dry-run", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["dry_run"] is True
    with psycopg.connect(store_url) as conn:
        assert conn.execute("SELECT count(*) FROM situations").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM steps").fetchone() == (0,)
    assert not smtp.recorder.messages


def test_an_outage_declared_on_a_follower_is_sent_by_the_leader(tmp_path: Path, store_url: str, peer: Peer,
                                                                smtp: SmtpServer, hooks: Hooks) -> None:
    config = write_config(tmp_path, store_url, peer.port, smtp.port, hooks.port)
    nodes = [Node(config, "alpha"), Node(config, "beta")]
    nodes[0].start()
    try:
        wait_for(lambda: nodes[0].role() == "leader", 20, "alpha to lead")
        nodes[1].start()
        wait_for(lambda: nodes[1].role() == "follower", 20, "beta to follow")
        req = urllib.request.Request(f"http://127.0.0.1:{nodes[1].port}/api/outage/chat", method="POST",
                                     data=json.dumps({"reason": "widget down", "by": "ops"}).encode(),
                                     headers={"Authorization": "Bearer cluster-t0ken",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.loads(r.read())
        assert answer["ok"] and answer["created"] and answer["ran"] == []  # the follower sends nothing itself
        wait_for(lambda: len(smtp.recorder.messages) >= 1, 15, "the leader to send the runbook")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{nodes[0].port}/metrics", timeout=5).read().decode()
        assert 'continuity_cluster_leader{node="alpha"} 1.0' in metrics
        assert "continuity_cluster_nodes 2.0" in metrics
    finally:
        for n in nodes:
            if n.running:
                n.kill(signal.SIGTERM)
