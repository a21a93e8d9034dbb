"""DnsProbe against a real DNS server on 127.0.0.1 (dnspython's wire format over UDP, records set per test)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.probes import probe_class
from continuity.probes.dns import DnsProbe, parse_resolver
from tests.probes.conftest import DnsPeer, MakeProbe, run_check

MS = timedelta(milliseconds=1)


@pytest.fixture
def zone(dns_peer: DnsPeer) -> DnsPeer:
    """example.test as a small company would publish it."""
    dns_peer.add("example.test", "A", "192.0.2.10", "192.0.2.11")
    dns_peer.add("example.test", "AAAA", "2001:db8::10")
    dns_peer.add("example.test", "MX", "10 mx1.example.test.", "20 MX2.Example.Test.")
    dns_peer.add("example.test", "TXT", '"v=spf1 mx -all"')
    dns_peer.add("example.test", "NS", "ns1.example.test.")
    dns_peer.add("www.example.test", "CNAME", "example.test.")
    dns_peer.add("mail.example.test", "A", "192.0.2.25")  # a name with an A record and nothing else
    return dns_peer


# (id, settings beyond resolver, expected status, expected reason: text or /regex/)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("A", {"query": "example.test"}, "up", ""),
    ("A expected", {"query": "example.test", "expect": ["192.0.2.11"]}, "up", ""),
    ("A both expected", {"query": "example.test", "expect": ["192.0.2.10", "192.0.2.11"]}, "up", ""),
    ("A wrong", {"query": "example.test", "expect": ["192.0.2.99"]}, "down",
     "answer lacks 192.0.2.99 (got 192.0.2.10, 192.0.2.11)"),
    ("AAAA", {"query": "example.test", "record": "AAAA"}, "up", ""),
    ("AAAA another spelling", {"query": "example.test", "record": "aaaa", "expect": ["2001:DB8:0::10"]}, "up", ""),
    ("MX", {"query": "example.test", "record": "MX"}, "up", ""),
    ("MX host", {"query": "example.test", "record": "MX", "expect": ["mx2.example.test"]}, "up", ""),
    ("MX full text", {"query": "example.test", "record": "MX", "expect": ["10 MX1.example.test."]}, "up", ""),
    ("MX missing host", {"query": "example.test", "record": "MX", "expect": ["mx3.example.test"]}, "down",
     "answer lacks mx3.example.test (got 10 mx1.example.test., 20 MX2.example.test.)"),
    ("TXT", {"query": "example.test", "record": "TXT", "expect": ["v=spf1 mx -all"]}, "up", ""),
    ("NS", {"query": "example.test", "record": "NS", "expect": ["ns1.example.test"]}, "up", ""),
    ("CNAME", {"query": "www.example.test", "record": "CNAME", "expect": ["example.test"]}, "up", ""),
    ("trailing dot and case", {"query": "Example.Test."}, "up", ""),
    ("NXDOMAIN", {"query": "gone.example.test"}, "down", "NXDOMAIN: gone.example.test does not exist"),
    ("no such record", {"query": "mail.example.test", "record": "MX"}, "down",
     "no MX record for mail.example.test"),
]


@pytest.mark.parametrize(("settings", "status", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdicts(zone: DnsPeer, make_probe: MakeProbe, settings: dict[str, Any], status: str, reason: str) -> None:
    result = run_check(make_probe(DnsProbe, resolver=zone.address, name="domain", timeout=2, **settings))
    assert (result.status, result.probe) == (status, "domain")
    if reason.startswith("/"):
        assert re.search(reason.strip("/"), result.reason), result.reason
    else:
        assert result.reason == reason
    assert 0 < result.latency < 1
    # The question really reached our server, unchanged by search domains.
    asked = settings["query"].lower().rstrip(".")
    assert zone.queries[-1] == (asked, settings.get("record", "A").upper())


def test_servfail_names_the_server(dns_peer: DnsPeer, make_probe: MakeProbe) -> None:
    dns_peer.add("example.test", "A", "192.0.2.10")
    dns_peer.mode = "servfail"
    result = run_check(make_probe(DnsProbe, query="example.test", resolver=dns_peer.address, timeout=2))
    host, port = dns_peer.address.split(":")
    assert result.status == "down"
    assert result.reason.startswith("no server answered: ")
    assert f"{host}@{port} answered SERVFAIL" in result.reason
    assert result.latency < 1


def test_silent_server_times_out(dns_peer: DnsPeer, make_probe: MakeProbe) -> None:
    dns_peer.mode = "silent"
    started = time.perf_counter()
    result = run_check(make_probe(DnsProbe, query="example.test", resolver=dns_peer.address, timeout=300 * MS))
    assert (result.status, result.reason) == ("down", "timed out after 0.3s")
    assert 0.25 < result.latency < 0.8
    assert time.perf_counter() - started < 1.5
    assert dns_peer.queries  # it did ask


def test_every_check_asks_the_server_again(zone: DnsPeer, make_probe: MakeProbe) -> None:
    """No cache: a record deleted a second ago must show as down now, not after its TTL."""
    probe = make_probe(DnsProbe, query="mail.example.test", resolver=zone.address, timeout=2)

    async def go() -> list[str]:
        first = await probe.check()
        zone.records.pop(("mail.example.test", "A"))
        zone.add("other.example.test", "A", "192.0.2.1")
        second = await probe.check()
        await probe.aclose()
        return [first.status, second.status, second.reason]

    assert asyncio.run(go()) == ["up", "down", "NXDOMAIN: mail.example.test does not exist"]
    assert zone.queries.count(("mail.example.test", "A")) == 2


def test_server_on_a_closed_port(make_probe: MakeProbe) -> None:
    """Nothing listens: the ICMP port-unreachable is reported, or the lookup times out; never up."""
    from tests.probes.conftest import free_port

    result = run_check(make_probe(DnsProbe, query="example.test", resolver=f"127.0.0.1:{free_port()}",
                                  timeout=300 * MS))
    assert result.status == "down"
    assert result.latency < 1


@pytest.mark.parametrize(("value", "parsed"), [
    ("192.0.2.53", ("192.0.2.53", 53)),
    ("192.0.2.53:5353", ("192.0.2.53", 5353)),
    ("2001:db8::53", ("2001:db8::53", 53)),
    ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ("[2001:db8::53]", ("2001:db8::53", 53)),
    (" 127.0.0.1:53 ", ("127.0.0.1", 53)),
])
def test_parse_resolver(value: str, parsed: tuple[str, int]) -> None:
    assert parse_resolver(value) == parsed


@pytest.mark.parametrize(("settings", "message"), [
    ({"resolver": "dns.example.test"}, "resolver must be an IP address"),
    ({"resolver": "192.0.2.53:0"}, "bad port in resolver"),
    ({"resolver": "192.0.2.53:http"}, "bad port in resolver"),
    ({"resolver": "[2001:db8::53"}, "bad resolver"),
    ({"record": "SRV"}, "record"),
    ({"query": "exa mple.test"}, "is not a domain name"),
    ({"query": "https://example.test/"}, "is not a domain name"),
    ({"expect": ["mail.example.test"]}, "expect 'mail.example.test' is not an IPv4 address"),
    ({"record": "AAAA", "expect": ["192.0.2.1"]}, "is not an IPv6 address, as an AAAA answer is"),
    ({"server": "192.0.2.53"}, "Extra inputs are not permitted"),
], ids=["name", "port 0", "port text", "bracket", "record", "space", "url", "A expects IP", "AAAA expects v6",
        "unknown key"])
def test_settings_errors(settings: dict[str, Any], message: str) -> None:
    data = {"type": "dns", "query": "example.test", **settings}
    with pytest.raises(ValidationError, match=re.escape(message)):
        probe_class("dns").Settings.model_validate(data)


def test_mx_expect_may_be_a_host_name() -> None:
    s = probe_class("dns").Settings.model_validate(
        {"type": "dns", "query": "example.test", "record": "mx", "expect": ["mx1.example.test"], "timeout": "2s"})
    assert (s.record, s.expect, s.timeout) == ("MX", ["mx1.example.test"], timedelta(seconds=2))
