"""The daemon as a real process: an SMTP server stops, the e-mail outage opens by itself and its first steps
land; the server comes back, the outage closes and the banner goes. Killed mid-outage and restarted, it sends
nothing twice and the escalation still happens at its original time."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.crashkit import ROOT, Recorder, free_port, wait_for

ESCALATION = 6  # seconds after opening: the test config's stand-in for the 30-minute escalation
TOKEN = "t0ken-for-tests"  # CONTINUITY_API_TOKEN of every daemon started here, unless a test removes it


def write_config(workdir: Path, smtp_port: int, http_port: int) -> Path:
    text = (ROOT / "playbooks.example.yaml").read_text(encoding="utf-8")
    text = text.replace("""  email:
    contact: help@shop.example.test
""", f"""  email:
    contact: help@shop.example.test
    health:
      every: 1s
      fail_after: 2
      recover_after: 2
      probes:
        - type: smtp
          host: 127.0.0.1
          port: {smtp_port}
          timeout: 1s
    override:
      website-banner: {{after: 0s}}
      social-post: {{after: {ESCALATION}s}}
""", 1)
    text = text.replace("  inline_budget: 10s", "  inline_budget: 0s")
    assert "  bind: 127.0.0.1:8765\n" in text
    text = text.replace("  bind: 127.0.0.1:8765\n", f"  bind: 127.0.0.1:{http_port}\n", 1)
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Smtp:
    """An SMTP server that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(Recorder(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class DaemonProc:
    def __init__(self, config: Path, http_port: int) -> None:
        self.config = config
        self.http_port = http_port
        self.proc: subprocess.Popen[str] | None = None
        self.logs: list[str] = []

    def start(self) -> None:
        env = dict(os.environ, CONTINUITY_USER="tester")
        env.pop("CONTINUITY_NOW", None)
        self.log_path = self.config.parent / f"daemon-{len(self.logs)}.log"
        self.logs.append(str(self.log_path))
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "continuity", "--config", str(self.config), "daemon",
                                          "--log-format", "json"], cwd=self.config.parent, env=env,
                                         stdout=subprocess.DEVNULL, stderr=log, text=True)
        wait_for(lambda: self.healthz() is not None, 20, "daemon /healthz")

    def healthz(self, token: str | None = TOKEN) -> dict[str, Any] | None:
        """The full /healthz (probe reasons, last checks) with the token, the public one without."""
        answer = self.healthz_answer(token)
        return answer[1] if answer is not None and answer[0] == 200 else None

    def healthz_answer(self, token: str | None) -> tuple[int, dict[str, Any]] | None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/healthz", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=1) as r:
                return r.status, dict(json.loads(r.read()))
        except urllib.error.HTTPError as err:
            with err:
                return err.code, dict(json.loads(err.read()))
        except OSError:
            return None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=15)
        self.proc = None
        return code

    def log_text(self) -> str:
        return "\n".join(Path(p).read_text() for p in self.logs)


def db(workdir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(workdir / "continuity.db")
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Smtp, DaemonProc]]:
    monkeypatch.setenv("CONTINUITY_API_TOKEN", TOKEN)
    smtp = Smtp()
    smtp.start()
    http_port = free_port()
    config = write_config(tmp_path, smtp.port, http_port)
    daemon = DaemonProc(config, http_port)
    try:
        yield tmp_path, smtp, daemon
    finally:
        if daemon.proc is not None:
            daemon.stop(signal.SIGKILL)
        smtp.stop()


BANNER = Path("site/banner/continuity-banner.json")


def test_outage_opens_and_closes_with_the_channel(setup: tuple[Path, Smtp, DaemonProc]) -> None:
    workdir, smtp, daemon = setup
    daemon.start()
    wait_for(lambda: (daemon.healthz() or {}).get("channels", {}).get("email", {}).get("last_check"), 10,
             "a first probe cycle")
    assert db(workdir, "SELECT COUNT(*) FROM situations") == [(0,)]

    smtp.stop()
    wait_for(lambda: (workdir / BANNER).exists(), 15, "the banner after the SMTP server stopped")
    sits = db(workdir, "SELECT id, channel, source, state FROM situations")
    assert sits == [(1, "email", "daemon", "open")]
    staff = [p.name for p in (workdir / "outbox").glob("*staff-runbook*")]
    assert len(staff) == 1
    assert (daemon.healthz() or {})["channels"]["email"]["state"] in ("down", "recovering")

    smtp.start()
    wait_for(lambda: not (workdir / BANNER).exists(), 15, "the banner to disappear after the server came back")
    wait_for(lambda: db(workdir, "SELECT state FROM situations") == [("closed",)], 10, "the outage to close")
    assert wait_for(lambda: list((workdir / "outbox").glob("*staff-resolved*")), 10, "the staff resolved message")
    assert daemon.stop() == 0  # SIGTERM: a clean exit
    log = daemon.log_text()
    assert '"event": "outage.opened"' in log and '"event": "outage.closed"' in log


def test_healthz_gives_probe_reasons_only_with_the_token(setup: tuple[Path, Smtp, DaemonProc]) -> None:
    workdir, smtp, daemon = setup
    daemon.start()
    wait_for(lambda: (daemon.healthz() or {}).get("channels", {}).get("email", {}).get("last_check"), 10,
             "a first probe cycle")
    smtp.stop()
    wait_for(lambda: (daemon.healthz() or {}).get("channels", {}).get("email", {}).get("state") in
             ("down", "recovering"), 15, "the e-mail channel to go down")
    answers = {token: daemon.healthz_answer(token) for token in (None, "wrong", TOKEN)}
    for token, answer in answers.items():
        assert answer is not None and answer[0] == 200, token  # the status code does not depend on the token
    full = answers[TOKEN][1]  # type: ignore[index]
    assert full["channels"]["email"]["reason"].startswith("smtp: connection refused")
    assert full["channels"]["email"]["last_check"] and full["stale_channels"] == []
    for token in (None, "wrong"):
        public = answers[token][1]  # type: ignore[index]
        assert public == {"ok": True, "scheduler_running": True, "role": "leader",  # SQLite: the only node leads
                          "channels": {"email": {"state": full["channels"]["email"]["state"], "degraded": False}}}
        assert "refused" not in json.dumps(public)
    daemon.stop()


def test_killed_mid_outage_and_restarted_sends_nothing_twice(setup: tuple[Path, Smtp, DaemonProc]) -> None:
    workdir, smtp, daemon = setup
    daemon.start()
    smtp.stop()
    wait_for(lambda: (workdir / BANNER).exists(), 15, "the banner")
    opened_at = db(workdir, "SELECT opened_at FROM situations")[0][0]
    daemon.stop(signal.SIGKILL)
    time.sleep(1.0)
    daemon.start()

    wait_for(lambda: db(workdir, "SELECT state FROM steps WHERE step_id = 'social-post'") == [("done",)],
             ESCALATION + 10, "the escalation step")
    due, started = db(workdir, "SELECT due_at, started_at FROM steps WHERE step_id = 'social-post'")[0]
    from continuity.store.sqlite import from_ts

    opened, due_at, started_at = from_ts(opened_at), from_ts(due), from_ts(started)
    assert opened and due_at and started_at
    assert (due_at - opened).total_seconds() == ESCALATION  # planned once, at its original time
    assert 0 <= (started_at - due_at).total_seconds() < 1.5  # and run then, not at restart or a minute later

    assert db(workdir, "SELECT COUNT(*) FROM situations") == [(1,)]
    keys = db(workdir, "SELECT key, COUNT(*) FROM steps GROUP BY key HAVING COUNT(*) > 1")
    assert keys == []
    files = [p.name for p in (workdir / "outbox").iterdir() if not p.name.startswith(".")]
    done_outbox = db(workdir, "SELECT COUNT(*) FROM steps WHERE sink = 'outbox' AND state IN ('done', 'undone')")
    assert len(files) == done_outbox[0][0]
    assert len([f for f in files if "staff-runbook" in f]) == 1
    assert daemon.stop() == 0


def _post(port: int, path: str, body: Any, token: str | None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(json.loads(r.read()))
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(json.loads(err.read()))


def test_metrics_and_token_protected_actions(setup: tuple[Path, Smtp, DaemonProc],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    workdir, smtp, daemon = setup
    monkeypatch.setenv("CONTINUITY_API_TOKEN", TOKEN)
    daemon.start()
    wait_for(lambda: (daemon.healthz() or {}).get("channels", {}).get("email", {}).get("last_check"), 10,
             "a first probe cycle")
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'continuity_probe_up{channel="email",probe="smtp"} 1.0' in metrics
    assert 'continuity_channel_state{channel="email",state="up"} 1.0' in metrics
    assert "continuity_probe_latency_seconds_bucket" in metrics

    body = {"reason": "PBX lost its trunk", "eta": "1h", "cause": "provider"}
    assert _post(daemon.http_port, "/api/outage/phone", body, None)[0] == 401
    assert _post(daemon.http_port, "/api/outage/phone", body, "wrong")[0] == 401
    status, reply = _post(daemon.http_port, "/api/outage/phone", {"reason": "x" * 501}, TOKEN)
    assert status == 400 and reply["error"] == "reason is 501 characters long; at most 500 are allowed", reply
    huge = urllib.request.Request(f"http://127.0.0.1:{daemon.http_port}/api/outage/phone", method="POST",
                                  data=json.dumps({"reason": "x" * 70_000}).encode(),
                                  headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as too_big:
        urllib.request.urlopen(huge, timeout=10)
    assert too_big.value.code == 413
    too_big.value.close()
    status, reply = _post(daemon.http_port, "/api/outage/phone", {"reason": "x", "cause": "aliens"}, TOKEN)
    assert status == 400 and "cause 'aliens' is unknown" in reply["error"], reply
    assert db(workdir, "SELECT COUNT(*) FROM situations") == [(0,)]  # refused requests changed nothing
    status, reply = _post(daemon.http_port, "/api/outage/phone", body, "t0ken-for-tests")
    assert status == 200 and reply["created"] is True
    assert db(workdir, "SELECT channel, source, reason FROM situations") == [("phone", "http", "PBX lost its trunk")]
    assert '"cause": "provider"' in db(workdir, "SELECT data FROM situations")[0][0]
    assert _post(daemon.http_port, "/api/outage/fax", body, "t0ken-for-tests")[0] == 400
    assert _post(daemon.http_port, "/api/outage/phone", {"reason": "x", "eta": 5}, "t0ken-for-tests") == \
        (400, {"ok": False, "error": "eta must be text"})
    assert _post(daemon.http_port, "/api/restore/phone", [1], "t0ken-for-tests")[0] == 400
    status, reply = _post(daemon.http_port, "/api/restore/phone", {"note": "ok"}, "t0ken-for-tests")
    assert status == 200 and reply["closed"] is True
    assert "t0ken-for-tests" not in daemon.log_text()
    daemon.stop()


def test_actions_are_disabled_without_a_token_in_the_environment(setup: tuple[Path, Smtp, DaemonProc],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    workdir, smtp, daemon = setup
    monkeypatch.delenv("CONTINUITY_API_TOKEN", raising=False)
    daemon.start()
    status, reply = _post(daemon.http_port, "/api/outage/phone", {"reason": "x"}, "anything")
    assert status == 403 and "CONTINUITY_API_TOKEN" in reply["error"]
    assert db(workdir, "SELECT COUNT(*) FROM situations") == [(0,)]
    daemon.stop()
