"""One daemon (vantage `central`) and `continuity agent --vantage office` (and `--vantage branch`) as real
processes on loopback: a quorum of two, a peer failing for one vantage and for both (told apart by the probes'
User-Agent), the office agent killed, hung (SIGSTOP) and back, staff told once that monitoring is degraded
(across a restart) and once that it is restored, a wrong token, and the daemon restarted under a reporting
agent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

from tests.agent.conftest import MAX_SILENCE, TOKEN, Site, get
from tests.crashkit import wait_for


def cli(site: Site, *args: str, code: int = 0) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "continuity", "--config", str(site.config), *args],
                          env=site.daemon.env, capture_output=True, text=True, timeout=30)
    assert done.returncode == code, done
    return dict(json.loads(done.stdout))


def test_the_config_validates_with_the_monitoring_playbook_in_every_language(site: Site) -> None:
    done = subprocess.run([sys.executable, "-m", "continuity", "--config", str(site.config), "validate"],
                          env=site.daemon.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done


def both_reported(site: Site) -> bool:
    return all(site.view("chat", v).get("status") == "up" and not site.view("chat", v).get("silent")
               for v in ("central", "office"))


def test_a_peer_failing_for_one_vantage_opens_nothing_under_quorum_two_and_for_both_one_outage(site: Site) -> None:
    site.start_daemon()
    site.agent("office").start()
    wait_for(lambda: both_reported(site), 20, "both vantages reporting chat up")
    assert site.peer.seen.get("office") and site.peer.seen.get("central"), site.peer.seen
    time.sleep(2)
    assert site.situations() == []  # healthy: nothing opens

    site.peer.failing = {"office"}
    wait_for(lambda: site.view("chat", "office").get("sees_down"), 10, "the office to see chat down")
    time.sleep(3)  # well past fail_after at both
    assert site.situations() == []
    assert site.view("chat", "central")["sees_down"] is False
    health = site.healthz()
    assert health["channels"]["chat"]["state"] == "up"
    metrics = get(site.http_port, "/metrics")
    assert metrics is not None
    assert 'continuity_vantage_sees_down{channel="chat",vantage="office"} 1.0' in metrics[1]
    assert 'continuity_vantage_sees_down{channel="chat",vantage="central"} 0.0' in metrics[1]
    status = cli(site, "status", "--json")
    seen = status["vantages"]["channels"]["chat"]["vantages"]
    assert (seen["office"]["sees_down"], seen["central"]["sees_down"]) == (True, False)
    assert seen["office"]["probes"][0]["status"] == "down" and status["vantages"]["vantage"] == "central"
    checked = cli(site, "check", "chat", "--json", code=0)  # here (SITE=central) the peer answers
    assert checked["channels"][0]["probes"][0]["vantages"] == ["central", "office"]
    assert checked["vantages"]["channels"]["chat"]["vantages"]["office"]["sees_down"] is True

    site.peer.failing = {"office", "central"}
    wait_for(lambda: site.open_outages() == {"chat"}, 10, "the chat outage once both see it down")
    site.peer.failing = set()
    wait_for(lambda: site.situations() == [("chat", "outage", "closed")], 15, "the chat outage to close")
    assert [s for s in site.situations() if s[0] == "chat"] == [("chat", "outage", "closed")]  # one outage
    assert site.agents["office"].stop() == 0
    assert site.daemon.stop() == 0


def test_the_office_agent_killed_opens_the_internet_outage_and_its_return_closes_it(site: Site) -> None:
    site.start_daemon()
    office = site.agent("office")
    office.start()
    wait_for(lambda: both_reported(site), 20, "both vantages reporting")
    site.peer.failing = {"office", "central"}
    wait_for(lambda: site.open_outages() == {"chat"}, 10, "the chat outage")

    office.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: "internet" in site.open_outages(), MAX_SILENCE + 6, "the internet outage after the kill")
    took = time.monotonic() - killed
    assert took <= MAX_SILENCE + 3, f"internet outage {took:.1f}s after the kill (max_silence {MAX_SILENCE}s)"
    # chat keeps its outage (a silent vantage counts neither way), and staff are told monitoring is degraded
    notes = wait_for(lambda: site.staff_files("staff-monitoring-degraded"), 15, "the monitoring-degraded message")
    assert site.open_outages() == {"chat", "internet"}
    assert ("vantage:office", "monitoring", "open") in site.situations()
    assert "Monitoring degraded: vantage office silent" in notes[0].read_text(encoding="utf-8")
    public = get(site.http_port, "/status.json", token=None)
    assert public is not None and public[0] == 200 and "vantage" not in json.dumps(public[1])  # staff's only

    # A restart while the office stays silent tells nobody again: the monitoring situation is in the store.
    assert site.daemon.stop() == 0
    site.start_daemon()
    wait_for(lambda: site.view("chat", "office").get("silent"), 20, "the office silent again after the restart")
    time.sleep(1.5)
    assert len(site.staff_files("staff-monitoring-degraded")) == 1  # told once, across the restart

    office.start()  # a new process: its start-up on a loaded machine takes seconds of the wait
    wait_for(lambda: "internet" not in site.open_outages(), 30, "the internet outage to close")
    restored = wait_for(lambda: site.staff_files("staff-monitoring-restored"), 10, "the monitoring-restored message")
    assert "vantage office reports again" in restored[0].read_text(encoding="utf-8")  # the daemon's note
    assert ("vantage:office", "monitoring", "closed") in site.situations()
    site.peer.failing = set()
    wait_for(lambda: not site.open_outages(), 15, "the chat outage to close")
    assert len(site.staff_files("staff-monitoring-degraded")) == len(site.staff_files("staff-monitoring-restored")) == 1
    log = site.daemon.log_text()
    assert log.count('"event": "monitoring.degraded"') == 2  # logged by each process; sent by the first alone
    assert log.count('"event": "monitoring.restored"') == 1


def test_two_agents_one_killed_the_other_and_the_daemon_still_make_the_quorum(three_sites: Site) -> None:
    """chat is seen from central, office and branch under quorum 2: a peer failing for the office alone
    opens nothing; with the office agent dead the other two still decide (no monitoring message), and a
    peer failing for both of them opens one outage, which closes when it recovers."""
    site = three_sites
    site.start_daemon()
    office, branch = site.agent("office"), site.agent("branch")
    office.start()
    branch.start()
    vantages = ("central", "office", "branch")
    wait_for(lambda: all(site.view("chat", v).get("status") == "up" for v in vantages), 20, "three vantages up")
    assert all(site.peer.seen.get(v) for v in vantages), site.peer.seen  # each told apart by its User-Agent

    site.peer.failing = {"office"}
    wait_for(lambda: site.view("chat", "office").get("sees_down"), 10, "the office to see chat down")
    office.stop(signal.SIGKILL)
    wait_for(lambda: site.view("chat", "office").get("silent"), 15, "the killed office counted silent")
    assert [x for x in site.situations() if x[0] != "internet"] == []  # the office alone decides nothing
    site.peer.failing = {"branch", "central"}
    wait_for(lambda: "chat" in site.open_outages(), 10, "the chat outage from central and branch")
    wait_for(lambda: "internet" in site.open_outages(), MAX_SILENCE + 6, "the internet outage (office heartbeat)")
    site.peer.failing = set()
    wait_for(lambda: "chat" not in site.open_outages(), 15, "the chat outage to close")
    assert [s for s in site.situations() if s[0] == "chat"] == [("chat", "outage", "closed")]  # one outage
    assert site.staff_files("staff-monitoring-degraded") == []  # two of three report: the quorum can decide
    office.start()
    wait_for(lambda: not site.open_outages(), 30, "the internet outage to close when the office is back")
    assert branch.stop() == 0 and office.stop() == 0


def test_a_hung_agent_is_silent_like_a_dead_one(site: Site) -> None:
    site.start_daemon()
    office = site.agent("office")
    office.start()
    wait_for(lambda: both_reported(site), 20, "both vantages reporting")
    office.send(signal.SIGSTOP)
    wait_for(lambda: site.open_outages() == {"internet"}, MAX_SILENCE + 6, "the internet outage while hung")
    wait_for(lambda: site.view("chat", "office").get("silent"), 10, "the office counted silent for chat")
    office.send(signal.SIGCONT)
    wait_for(lambda: not site.open_outages(), 15, "the internet outage to close after SIGCONT")
    wait_for(lambda: site.staff_files("staff-monitoring-restored"), 10, "monitoring restored after SIGCONT")
    # chat never opened: silence is not an outage, only a monitoring problem staff were told of once
    assert sorted(site.situations()) == [("internet", "outage", "closed"), ("vantage:office", "monitoring", "closed")]
    assert len(site.staff_files("staff-monitoring-degraded")) == 1


def test_a_wrong_token_exits_2_with_a_clear_message(site: Site) -> None:
    site.start_daemon()
    env = {**site.daemon.env, "CONTINUITY_API_TOKEN": "not-the-token"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "continuity", "agent", "--server",
                           f"http://127.0.0.1:{site.http_port}", "--vantage", "office"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert "refused the agent's token (401" in done.stderr
    assert "not-the-token" not in done.stderr + done.stdout and TOKEN not in done.stderr
    assert time.monotonic() - started < 15
    unset = {k: v for k, v in env.items() if k != "CONTINUITY_API_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "continuity", "agent", "--server",
                           f"http://127.0.0.1:{site.http_port}", "--vantage", "office"], env=unset,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "CONTINUITY_API_TOKEN is not set" in done.stderr, done


def test_the_daemon_restarted_while_the_agent_keeps_reporting(site: Site) -> None:
    site.start_daemon()
    office = site.agent("office")
    office.start()
    wait_for(lambda: both_reported(site), 20, "both vantages reporting")
    site.daemon.stop()
    time.sleep(3)  # the agent keeps probing, its posts fail
    site.start_daemon()
    wait_for(lambda: both_reported(site), 20, "both vantages reporting to the new daemon")
    assert site.healthz()["heard"].get("office")
    time.sleep(2)
    assert site.situations() == []  # the restart opened nothing
    log = office.log_text()
    assert log.count('"event": "agent.server_away"') == 1, log  # said once, not once per retry
    assert '"event": "agent.server_back"' in log
    assert office.proc is not None and office.proc.poll() is None


def test_observations_and_pings_need_the_token_and_valid_fields(site: Site) -> None:
    import urllib.request

    site.start_daemon()

    def post(path: str, body: object, token: str | None = TOKEN) -> tuple[int, dict[str, object]]:
        req = urllib.request.Request(f"http://127.0.0.1:{site.http_port}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.loads(err.read())

    import urllib.error

    assert post("/api/heartbeat/office", {}, token="wrong")[0] == 401
    assert post("/api/observations", {"vantage": "office", "observations": []}, token=None)[0] == 401
    assert get(site.http_port, "/api/probes?vantage=office", token="wrong")[0] == 401  # type: ignore[index]
    code, body = post("/api/observations", {"vantage": "office", "observations": [{"channel": "chta",
                                                                                   "status": "up"}]})
    assert code == 400 and "observations[0].channel" in str(body["error"])
    code, body = post("/api/observations", {"vantage": "Office!", "observations": []})
    assert code == 400 and "vantage" in str(body["error"])
    assert "office" not in site.healthz()["heard"]  # nothing recorded by the refused posts
    assert post("/api/heartbeat/office", {})[0] == 200
    assert "office" in site.healthz()["heard"]
    probes = get(site.http_port, "/api/probes?vantage=office")
    assert probes is not None and probes[0] == 200
    assigned = probes[1]["channels"]
    assert list(assigned) == ["chat"]  # heartbeats are the daemon's: never assigned to an agent
    assert assigned["chat"]["probes"][0]["headers"] == {"X-Site": "${SITE}"}  # references stay unresolved


def test_the_agent_picks_up_a_new_assignment_without_a_restart(site: Site) -> None:
    site.start_daemon()
    office = site.agent("office")
    office.start()
    wait_for(lambda: both_reported(site), 20, "both vantages reporting")
    site.daemon.stop()
    text = site.config.read_text(encoding="utf-8")
    site.config.write_text(text.replace("""  internet:
""", f"""  email:
    contact: help@example.test
    health:
      every: 1s
      probes:
        - {{type: http, url: "http://127.0.0.1:{site.peer.port}/mail", vantages: [office]}}
  internet:
""", 1), encoding="utf-8")
    site.start_daemon()
    wait_for(lambda: site.view("email", "office").get("status") == "up", 20, "the office reporting the new channel")
    assert office.proc is not None and office.proc.poll() is None  # the same agent process
    assert office.log_text().count('"event": "agent.probes"') == 2
