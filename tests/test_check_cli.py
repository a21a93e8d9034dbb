"""`continuity check [CHANNEL] [--json]`: every channel's probes run once against real loopback peers; the
table and the JSON name each channel's state, latency and reason; exit 1 when one is down, 2 for a channel that
cannot be checked; and nothing is written to the store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STORE_NAME, Configure, RunCli, store_snapshot, tree
from tests.probes import conftest as peers
from tests.probes.conftest import HttpPeer, free_port

http_peer = peers.http_peer  # the loopback HTTP server of the probe tests, bound to a name pytest sees here


@pytest.fixture
def two_channels(configure: Configure, http_peer: HttpPeer) -> Path:
    """phone: an http probe of a peer answering 200; email: a tcp probe of a port nothing listens on."""
    url = http_peer.reply("/health", status=200, body="ok")
    closed = free_port()

    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["phone"]["health"] = {
            "probes": [{"type": "http", "name": "pbx-web", "url": url, "timeout": "2s"}]}
        cfg["channels"]["email"]["health"] = {
            "probes": [{"type": "tcp", "name": "smtp-port", "host": "127.0.0.1", "port": closed, "timeout": "2s"}]}

    return configure(edit)


def table_rows(stdout: str) -> list[list[str]]:
    """The body rows of a rich table, cells stripped (box-drawing │ separates them)."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in stdout.splitlines() if line.strip().startswith("│")]


def test_table_names_each_channel_state_latency_and_reason(two_channels: Path, cli: RunCli,
                                                            http_peer: HttpPeer, workdir: Path) -> None:
    out = cli("check")
    assert out.returncode == 1, (out.stdout, out.stderr)  # email is down
    rows = table_rows(out.stdout)
    by_name = {(r[0], r[1]): r for r in rows}
    phone, pbx = by_name[("phone", "")], by_name[("", "pbx-web")]
    email, smtp = by_name[("email", "")], by_name[("", "smtp-port")]
    assert (phone[2], pbx[2]) == ("up", "up")
    assert (email[2], smtp[2]) == ("down", "down")
    for row in (phone, pbx, email, smtp):
        assert re.fullmatch(r"\d+ ms", row[3]), row
    assert phone[4] == "" and pbx[4] == ""  # nothing to explain for a passing check
    assert email[4] == "smtp-port: connection refused"
    assert smtp[4] == "connection refused"
    # The probe really reached the peer (the state is observed, not assumed).
    assert [(s.method, s.path) for s in http_peer.requests] == [("GET", "/health")]
    # Rows follow the config's channel order, each channel's probes under it.
    assert [r[0] or r[1] for r in rows] == ["phone", "pbx-web", "email", "smtp-port"]
    assert not (workdir / STORE_NAME).exists()


def test_json_has_the_documented_fields(two_channels: Path, cli: RunCli, workdir: Path) -> None:
    out = cli("check", "--json")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"ok", "channels", "surge"}
    assert doc["ok"] is False and doc["surge"] == []
    channels = {c["channel"]: c for c in doc["channels"]}
    assert list(channels) == ["phone", "email"]
    for c in channels.values():
        assert set(c) == {"channel", "status", "reason", "latency_ms", "probes"}
        assert isinstance(c["latency_ms"], int | float) and c["latency_ms"] >= 0
        for p in c["probes"]:
            assert set(p) == {"probe", "status", "latency_ms", "reason", "vantages"}
            assert isinstance(p["latency_ms"], int | float) and p["latency_ms"] >= 0
            assert len(p["vantages"]) == 1  # no `vantages:` in this config: the daemon's own
    assert (channels["phone"]["status"], channels["phone"]["reason"]) == ("up", "")
    assert [(p["probe"], p["status"], p["reason"]) for p in channels["phone"]["probes"]] == [("pbx-web", "up", "")]
    assert (channels["email"]["status"], channels["email"]["reason"]) == ("down", "smtp-port: connection refused")
    assert [(p["probe"], p["status"], p["reason"]) for p in channels["email"]["probes"]] == [
        ("smtp-port", "down", "connection refused")]
    assert not (workdir / STORE_NAME).exists()


def test_one_healthy_channel_alone_exits_0(two_channels: Path, cli: RunCli, workdir: Path) -> None:
    out = cli("check", "phone", "--json")
    assert out.returncode == 0, (out.stdout, out.stderr)
    doc = json.loads(out.stdout)
    assert doc["ok"] is True
    assert [(c["channel"], c["status"]) for c in doc["channels"]] == [("phone", "up")]
    table = cli("check", "phone")
    assert table.returncode == 0, table.stderr
    names = [r[0] for r in table_rows(table.stdout) if r[0]]
    assert names == ["phone"]  # email is not checked, so its failure does not count
    assert not (workdir / STORE_NAME).exists()


def test_the_down_channel_alone_exits_1(two_channels: Path, cli: RunCli) -> None:
    out = cli("check", "email", "--json")
    assert out.returncode == 1, out.stderr
    assert [(c["channel"], c["status"]) for c in json.loads(out.stdout)["channels"]] == [("email", "down")]


@pytest.mark.parametrize(("channel", "message"), [
    ("fax", "unknown channel 'fax'; configured channels: phone, email, chat, internet, social"),
    ("chat", "channel 'chat' has no health checks (channels.chat.health.probes)"),
])
def test_a_channel_that_cannot_be_checked_exits_2(two_channels: Path, cli: RunCli, workdir: Path, channel: str,
                                                  message: str) -> None:
    out = cli("check", channel)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    assert "error:" in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr
    as_json = cli("check", channel, "--json")
    assert as_json.returncode == 2
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert [e["message"] for e in doc["errors"]] == [message]
    assert not (workdir / STORE_NAME).exists()


def test_no_channel_with_probes_exits_2(cli: RunCli, workdir: Path) -> None:
    out = cli("check")  # the shipped config: every health block is commented out
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "no channel has health checks; add channels.NAME.health.probes to the config" in out.stderr
    assert not (workdir / STORE_NAME).exists()


def test_check_writes_nothing_even_when_a_store_exists(two_channels: Path, cli: RunCli, workdir: Path) -> None:
    """An existing ledger is left exactly as it was: check opens no outage for the down channel."""
    made = cli("status")  # creates the store as every store-using command does
    assert made.returncode == 0, made.stderr
    before = store_snapshot(workdir)
    assert before, "status should have created the store"
    files_before = tree(workdir)
    assert cli("check").returncode == 1
    assert store_snapshot(workdir) == before
    assert tree(workdir) == files_before
    status = json.loads(cli("status", "--json").stdout)
    assert status["open"] == []
