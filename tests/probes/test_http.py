"""HttpProbe against a real loopback server: each row is one answer from the peer and the verdict it earns."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from continuity import __version__
from continuity.config.envrefs import resolve_refs
from continuity.probes import probe_class
from continuity.probes.http import HttpProbe
from tests.conftest import Configure
from tests.probes.conftest import HttpPeer, MakeProbe, free_port, run_check

MS = timedelta(milliseconds=1)

# (id, the peer's reply, probe settings beyond url, expected status, expected reason: text or /regex/)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("ok", {}, {}, "up", ""),
    ("503", {"status": 503}, {}, "down", "HTTP 503"),
    ("404", {"status": 404}, {}, "down", "HTTP 404"),
    ("204 expected", {"status": 204, "body": b""}, {"expect_status": [200, 204]}, "up", ""),
    ("redirect not followed", {"status": 302}, {}, "down", "HTTP 302"),
    ("contains", {"body": "status: ok\n"}, {"contains": "ok"}, "up", ""),
    ("contains missing", {"body": "status: failing"}, {"contains": "all good"}, "down",
     "body does not contain 'all good'"),
    ("regex", {"body": '{"healthy": true}'}, {"regex": r'"healthy":\s*true'}, "up", ""),
    ("regex miss", {"body": '{"healthy": false}'}, {"regex": r'"healthy":\s*true'}, "down",
     "body does not match '\"healthy\":\\\\s*true'"),
    ("non-ascii body", {"body": "état: opérationnel".encode(), "content_type": "text/plain; charset=utf-8"},
     {"contains": "opérationnel"}, "up", ""),
    ("body checked only on a good status", {"status": 500, "body": "ok"}, {"contains": "ok"}, "down", "HTTP 500"),
    ("slow", {"delay": 0.3}, {"max_latency": 100 * MS}, "degraded", r"/^slow: 0\.[3-9]\ds > 0\.1s$/"),
    ("slow and failing", {"delay": 0.3, "status": 502}, {"max_latency": 100 * MS}, "down", "HTTP 502"),
    ("fast enough", {"delay": 0.05}, {"max_latency": timedelta(seconds=2)}, "up", ""),
    ("hang", {"hang": True}, {"timeout": 300 * MS}, "down", "timed out after 0.3s"),
    ("HEAD", {}, {"method": "HEAD"}, "up", ""),
    ("POST", {"status": 201}, {"method": "post", "expect_status": [201]}, "up", ""),
]


@pytest.mark.parametrize(("reply", "settings", "status", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdicts(http_peer: HttpPeer, make_probe: MakeProbe, reply: dict[str, Any], settings: dict[str, Any],
                  status: str, reason: str) -> None:
    url = http_peer.reply("/health", **reply)
    result = run_check(make_probe(HttpProbe, url=url, name="website", **settings))
    assert (result.status, result.probe) == (status, "website")
    if reason.startswith("/"):
        assert re.search(reason.strip("/"), result.reason), result.reason
    else:
        assert result.reason == reason
    assert 0 < result.latency < 2
    method = settings.get("method", "GET").upper()
    assert http_peer.requests[-1].method == method


def test_refused(make_probe: MakeProbe) -> None:
    result = run_check(make_probe(HttpProbe, url=f"http://127.0.0.1:{free_port()}/health"))
    assert (result.status, result.reason) == ("down", "connection refused")


def test_timeout_bounds_a_slow_drip(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    """httpx's timeout is per read; the probe's own budget is for the whole exchange."""
    url = http_peer.reply("/health", delay=0.6)
    result = run_check(make_probe(HttpProbe, url=url, timeout=250 * MS))
    assert (result.status, result.reason) == ("down", "timed out after 0.25s")
    assert result.latency < 0.5


def test_tls_verification(https_peer: HttpPeer, make_probe: MakeProbe) -> None:
    url = https_peer.url("/health")
    strict = run_check(make_probe(HttpProbe, url=url))
    assert strict.status == "down"
    assert strict.reason.startswith("TLS certificate not accepted: self")  # "self-signed certificate"
    assert run_check(make_probe(HttpProbe, url=url, verify_tls=False)).status == "up"


def test_verify_tls_false_does_not_use_a_shared_verifying_client(https_peer: HttpPeer, make_probe: MakeProbe) -> None:
    async def go() -> str:
        async with httpx.AsyncClient() as shared:
            probe = make_probe(HttpProbe, url=https_peer.url(), verify_tls=False, client=shared)
            try:
                return (await probe.check()).status
            finally:
                await probe.aclose()

    assert asyncio.run(go()) == "up"


def test_shared_client_serves_many_probes_and_stays_open(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    async def go() -> tuple[list[str], bool]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=5)) as shared:
            probes = [make_probe(HttpProbe, url=http_peer.url(f"/p{i}"), client=shared) for i in range(30)]
            results = await asyncio.gather(*(p.check() for p in probes))
            for p in probes:
                await p.aclose()  # must not close the client it was lent
            return [r.status for r in results], shared.is_closed

    statuses, closed = asyncio.run(go())
    assert statuses == ["up"] * 30
    assert not closed
    assert sorted(r.path for r in http_peer.requests) == sorted(f"/p{i}" for i in range(30))


def test_own_client_is_reused_across_checks_and_closed(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    probe = make_probe(HttpProbe, url=http_peer.url())

    async def go() -> list[str]:
        statuses = [(await probe.check()).status for _ in range(3)]
        client = probe._client()
        await probe.aclose()
        assert client.is_closed
        return statuses

    assert asyncio.run(go()) == ["up", "up", "up"]


def test_headers_and_bearer_token_are_sent_and_never_shown(http_peer: HttpPeer, make_probe: MakeProbe) -> None:
    token = resolve_refs("${STATUS_TOKEN}", {"STATUS_TOKEN": "tok-7c1e-secret"})
    probe = make_probe(HttpProbe, url=http_peer.reply("/health", status=401, body="bad token tok-7c1e-secret"),
                       headers={"X-Probe": "continuity"}, bearer_token=token, contains="ok")
    result = run_check(probe)
    assert (result.status, result.reason) == ("down", "HTTP 401")
    seen = http_peer.requests[-1].headers
    assert seen["Authorization"] == "Bearer tok-7c1e-secret"
    assert seen["X-Probe"] == "continuity"
    assert seen["User-Agent"] == f"continuity/{__version__}"  # no vantage in a bare context
    for shown in (repr(probe.settings), str(result.as_dict()), probe.settings.model_dump_json()):
        assert "tok-7c1e" not in shown


@pytest.mark.parametrize(("settings", "message"), [
    ({"url": "ftp://example.test/"}, "http:// or https://"),
    ({"url": "http://"}, "http:// or https://"),
    ({"url": "http://x:99999/"}, "invalid URL"),
    ({"method": "DELETE"}, "method"),
    ({"expect_status": [200, 700]}, "not HTTP status codes: [700]"),
    ({"expect_status": []}, "at least 1"),
    ({"regex": "([a-z"}, "invalid regex"),
    ({"method": "HEAD", "contains": "ok"}, "HEAD response has no body"),
    ({"bearer_token": "literal-secret"}, "secrets must not be written in the YAML"),
    ({"max_latency": "0s"}, "max_latency must be more than 0s"),
    ({"timeout_s": 5}, "Extra inputs are not permitted"),
], ids=["scheme", "no host", "port", "method", "status", "no status", "regex", "head+body", "literal secret",
        "zero latency", "unknown key"])
def test_settings_errors(settings: dict[str, Any], message: str) -> None:
    data = {"type": "http", "url": "https://example.test/health", **settings}
    with pytest.raises(ValidationError, match=re.escape(message)):
        HttpProbe.Settings.model_validate(data)


def test_settings_from_yaml_shapes() -> None:
    s = probe_class("http").Settings.model_validate(
        {"type": "http", "url": "https://example.test/", "method": "head", "max_latency": "2s", "timeout": "10s"})
    assert (s.method, s.max_latency, s.timeout) == ("HEAD", timedelta(seconds=2), timedelta(seconds=10))


def test_importing_probe_modules_loads_no_heavy_library() -> None:
    code = ("import sys, continuity.probes.http, continuity.probes.tcp, continuity.probes.dns, "
            "continuity.probes.statuspage; "
            "print(sorted(m for m in ('httpx', 'dns.resolver', 'dns.asyncresolver') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_probe_set_hanging_peers_do_not_hold_up_the_others(http_peer: HttpPeer, configure: Configure) -> None:
    """The daemon's path: many hanging probes on one channel; a healthy channel still answers at once, and
    closing the set closes every client (the shared ones and the one a verify_tls: false probe made)."""
    from continuity.checks import ProbeSet
    from continuity.clock import SystemClock
    from continuity.config.loader import load_config

    hang = http_peer.reply("/hang", hang=True)
    ok = http_peer.reply("/ok")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["email"]["health"] = {"probes": [{"type": "http", "url": hang, "timeout": "1s"}] * 12}
        cfg["channels"]["chat"]["health"] = {"probes": [{"type": "http", "url": ok, "timeout": "2s"},
                                                        {"type": "http", "url": ok, "verify_tls": False}]}

    probe_set = ProbeSet(load_config(configure(edit)), SystemClock())

    async def go() -> tuple[Any, Any, list[bool]]:
        hanging = asyncio.create_task(probe_set.check("email"))
        # Let the twelve connections land first: a burst past the test server's small listen backlog would
        # measure the kernel's SYN retry, not the probes.
        while not hanging.done() and sum(r.path == "/hang" for r in http_peer.requests) < 12:
            await asyncio.sleep(0.01)
        chat = await probe_set.check("chat")
        email = await hanging
        clients = [c for probes in probe_set.probes.values() for p in probes for c in (p._client(),)]  # type: ignore[attr-defined]
        await probe_set.aclose()
        return email, chat, [c.is_closed for c in clients]

    email, chat, closed = asyncio.run(go())
    assert (chat.status, [r.status for r in chat.results]) == ("up", ["up", "up"])
    assert max(r.latency for r in chat.results) < 0.4
    assert email.status == "down"
    assert {r.reason for r in email.results} == {"timed out after 1s"}
    assert all(closed)
