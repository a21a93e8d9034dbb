"""Every node of a cluster is a vantage: a channel probed from both nodes under `quorum: 2` is down only when
both see it down, whichever node leads, because each follower's observations reach the leader through the
store. A peer that fails for one node only opens nothing; failing for both opens one outage, closed when it
recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.agent.conftest import SitePeer
from tests.cluster.kit import Node, write_config
from tests.crashkit import SmtpServer, wait_for


class SiteNode(Node):
    """A node whose probes name it in the X-Site header (its ${SITE}), so the peer can fail for it alone."""

    def start(self) -> None:
        log_path = self.config.parent / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log_path)
        env = dict(os.environ, CONTINUITY_API_TOKEN="cluster-t0ken", SITE=self.name)
        with log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "continuity", "--config", str(self.config), "daemon", "--node", self.name,
                 "--bind", f"127.0.0.1:{self.port}", "--log-format", "json"],
                cwd=self.config.parent, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)


def situations(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(k), str(s)) for k, s in conn.execute("SELECT kind, state FROM situations WHERE kind = 'outage'"
                                                          " ORDER BY id").fetchall()]


def test_a_follower_is_a_vantage_of_the_leaders_quorum(tmp_path: Path, store_url: str, smtp: SmtpServer) -> None:
    peer = SitePeer()
    try:
        config = write_config(tmp_path, store_url, peer.port, smtp.port, smtp.port)
        text = config.read_text(encoding="utf-8").replace(
            "      recover_after: 1\n", "      recover_after: 1\n      quorum: 2\n").replace(
            f'        - {{type: http, url: "http://127.0.0.1:{peer.port}/chat", timeout: 1s}}',
            f'        - {{type: http, url: "http://127.0.0.1:{peer.port}/chat", timeout: 1s,'
            ' headers: {X-Site: "${SITE}"}, vantages: [alpha, beta]}')
        assert "quorum: 2" in text and "vantages: [alpha, beta]" in text
        config.write_text(text, encoding="utf-8")
        nodes = [SiteNode(config, "alpha"), SiteNode(config, "beta")]
        for n in nodes:
            n.start()
        try:
            wait_for(lambda: any(n.role() == "leader" for n in nodes), 20, "a leader")
            wait_for(lambda: peer.seen.get("alpha", 0) >= 3 and peer.seen.get("beta", 0) >= 3, 20,
                     "both nodes to probe")
            peer.failing = {"alpha"}  # one vantage alone: no outage under quorum 2
            seen = dict(peer.seen)
            wait_for(lambda: peer.seen.get("alpha", 0) >= seen.get("alpha", 0) + 4
                     and peer.seen.get("beta", 0) >= seen.get("beta", 0) + 4, 20, "four more cycles")
            assert situations(store_url) == []
            peer.failing = {"alpha", "beta"}
            wait_for(lambda: situations(store_url) == [("outage", "open")], 20, "one outage seen from both nodes")
            peer.failing = set()
            wait_for(lambda: situations(store_url) == [("outage", "closed")], 20, "the outage to close")
            with psycopg.connect(store_url) as conn:
                monitoring = conn.execute("SELECT count(*) FROM situations WHERE kind <> 'outage'").fetchone()
            assert monitoring == (0,)  # the follower was never taken for a silent vantage
        finally:
            for n in nodes:
                if n.running:
                    n.kill(signal.SIGTERM)
    finally:
        peer.close()
