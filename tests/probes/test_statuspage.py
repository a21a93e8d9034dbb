"""StatuspageProbe against a loopback server serving a real-format `/api/v2/summary.json`."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.probes import probe_class
from continuity.probes.statuspage import StatuspageProbe, summary_url
from tests.probes.conftest import DATA, HttpPeer, MakeProbe, free_port, run_check

MS = timedelta(milliseconds=1)
SUMMARY: dict[str, Any] = json.loads((DATA / "summary.json").read_text())
PATH = "/api/v2/summary.json"


def serve(peer: HttpPeer, summary: dict[str, Any] | None = None, **reply: Any) -> str:
    """Serve a summary (the recorded one by default) and return the page's base URL."""
    body = json.dumps(SUMMARY if summary is None else summary)
    peer.reply(PATH, body=body, content_type="application/json", **reply)
    return peer.base_url


def with_status(name: str, status: str) -> dict[str, Any]:
    """The recorded summary with one component's state changed."""
    summary = copy.deepcopy(SUMMARY)
    hits = [c for c in summary["components"] if c["name"] == name]
    assert hits, name
    for comp in hits:
        comp["status"] = status
    return summary


# (id, component, probe settings, expected status, expected reason) against the recorded summary
CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("operational", "Voice Calls", {}, "up", ""),
    ("any case and spacing", "  voice CALLS ", {}, "up", ""),
    ("degraded performance", "SMS", {}, "degraded", "SMS: degraded performance"),
    ("degraded performance counts as up", "SMS", {"degraded_is": "up"}, "up", "SMS: degraded performance"),
    ("degraded performance counts as down", "SMS", {"degraded_is": "down"}, "down", "SMS: degraded performance"),
    ("partial outage", "Chat Widget", {}, "degraded", "Chat Widget: partial outage"),
    ("major outage", "SIP Trunking", {}, "down", "SIP Trunking: major outage"),
    ("under maintenance", "Call Recording", {}, "degraded", "Call Recording: under maintenance"),
    ("a group", "Europe", {}, "degraded", "Europe: partial outage"),
    ("same name twice: the worse wins", "API", {}, "down", "API: major outage"),
]


@pytest.mark.parametrize(("component", "settings", "status", "reason"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_component_states(http_peer: HttpPeer, make_probe: MakeProbe, component: str, settings: dict[str, Any],
                          status: str, reason: str) -> None:
    probe = make_probe(StatuspageProbe, url=serve(http_peer), component=component, name="carrier", **settings)
    result = run_check(probe)
    assert (result.status, result.reason, result.probe) == (status, reason, "carrier")
    assert 0 < result.latency < 2
    seen = http_peer.requests[-1]
    assert (seen.method, seen.path) == ("GET", PATH)
    assert seen.headers["Accept"] == "application/json"


@pytest.mark.parametrize(("state", "status", "reason"), [
    ("operational", "up", ""),
    ("degraded_performance", "degraded", "Voice Calls: degraded performance"),
    ("partial_outage", "degraded", "Voice Calls: partial outage"),
    ("major_outage", "down", "Voice Calls: major outage"),
    ("under_maintenance", "degraded", "Voice Calls: under maintenance"),
    ("on_fire", "degraded", "Voice Calls: unknown state 'on_fire'"),
])
def test_every_state_of_one_component(http_peer: HttpPeer, make_probe: MakeProbe, state: str, status: str,
                                      reason: str) -> None:
    url = serve(http_peer, with_status("Voice Calls", state))
    result = run_check(make_probe(StatuspageProbe, url=url, component="Voice Calls"))
    assert (result.status, result.reason) == (status, reason)


def test_missing_component_lists_what_there_is(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    result = run_check(make_probe(StatuspageProbe, url=serve(http_peer), component="Fax"))
    assert result.status == "down"
    assert result.reason == ("no component 'Fax' on Callwave (available: Voice Calls, SMS, Chat Widget, "
                             "SIP Trunking, Call Recording, Europe, API, Webhooks, API)")


def test_missing_component_on_a_big_page_is_shortened(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    summary = copy.deepcopy(SUMMARY)
    template = summary["components"][0]
    summary["components"] = [{**template, "id": f"c{i}", "name": f"Region {i}"} for i in range(20)]
    result = run_check(make_probe(StatuspageProbe, url=serve(http_peer, summary), component="Fax"))
    assert result.status == "down"
    assert result.reason.endswith("Region 10, Region 11 and 8 more)")


@pytest.mark.parametrize(("reply", "reason"), [
    ({"status": 500, "body": "<h1>Internal Server Error</h1>", "content_type": "text/html"}, "HTTP 500"),
    ({"status": 404, "body": "not found"}, "HTTP 404"),
    ({"body": '{"page": {"id": "x", "name": "Callwave"}, "components": [', "content_type": "application/json"},
     "status page answered with bad JSON"),
    ({"body": b"\xff\xfe\x00garbage", "content_type": "application/json"}, "status page answered with bad JSON"),
    ({"body": "<html>maintenance</html>", "content_type": "text/html"}, "status page answered with bad JSON"),
    ({"body": '{"status": {"indicator": "none"}}', "content_type": "application/json"},
     "not a Statuspage summary (no page/components/status)"),
    ({"body": "[1, 2, 3]", "content_type": "application/json"},
     "not a Statuspage summary (no page/components/status)"),
    ({"hang": True}, "timed out after 0.3s"),
], ids=["500", "404", "truncated JSON", "binary", "HTML", "other JSON", "a list", "hang"])
def test_a_broken_page_is_down(http_peer: HttpPeer, make_probe: MakeProbe, reply: dict[str, Any],
                               reason: str) -> None:
    http_peer.reply(PATH, **reply)
    result = run_check(make_probe(StatuspageProbe, url=http_peer.base_url, component="Voice Calls",
                                  timeout=300 * MS))
    assert (result.status, result.reason) == ("down", reason)
    assert result.latency < 1


def test_refused(make_probe: MakeProbe) -> None:
    result = run_check(make_probe(StatuspageProbe, url=f"http://127.0.0.1:{free_port()}", component="SMS"))
    assert (result.status, result.reason) == ("down", "connection refused")


def test_follows_a_redirect_to_the_page(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    """Providers move their pages (http → https, old domain → new); the summary is still theirs."""
    serve(http_peer)
    http_peer.reply("/old" + PATH, status=301, body="", headers={"Location": http_peer.base_url + PATH})
    result = run_check(make_probe(StatuspageProbe, url=http_peer.base_url + "/old", component="SIP Trunking"))
    assert (result.status, result.reason) == ("down", "SIP Trunking: major outage")
    assert [r.path for r in http_peer.requests] == ["/old" + PATH, PATH]


@pytest.mark.parametrize(("url", "expected"), [
    ("https://status.example.test", "https://status.example.test/api/v2/summary.json"),
    ("https://status.example.test/", "https://status.example.test/api/v2/summary.json"),
    ("https://status.example.test/api/v2", "https://status.example.test/api/v2/summary.json"),
    ("https://status.example.test/api/v2/", "https://status.example.test/api/v2/summary.json"),
    ("https://status.example.test/api/v2/summary.json", "https://status.example.test/api/v2/summary.json"),
    ("https://example.test/status/voice", "https://example.test/status/voice/api/v2/summary.json"),
    ("https://status.example.test/?utm=x#top", "https://status.example.test/api/v2/summary.json"),
])
def test_summary_url(url: str, expected: str) -> None:
    assert summary_url(url) == expected


def test_the_page_base_url_and_the_json_url_read_the_same(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    serve(http_peer)
    for url in (http_peer.base_url, http_peer.base_url + "/api/v2", http_peer.base_url + PATH):
        assert run_check(make_probe(StatuspageProbe, url=url, component="SMS")).status == "degraded"
    assert {r.path for r in http_peer.requests} == {PATH}


@pytest.mark.parametrize(("settings", "message"), [
    ({"url": "status.example.test"}, "http:// or https://"),
    ({"component": ""}, "at least 1 character"),
    ({"degraded_is": "fine"}, "degraded_is"),
    ({"components": ["SMS"]}, "Extra inputs are not permitted"),
], ids=["no scheme", "empty component", "degraded_is", "unknown key"])
def test_settings_errors(settings: dict[str, Any], message: str) -> None:
    data = {"type": "statuspage", "url": "https://status.example.test", "component": "SMS", **settings}
    with pytest.raises(ValidationError, match=re.escape(message)):
        probe_class("statuspage").Settings.model_validate(data)
