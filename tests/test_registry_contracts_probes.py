"""Contracts every registered probe type keeps, walked from the PROBES registry itself.

The probe half of tests/test_registry_contracts.py (whose helpers it uses): parametrised by
`continuity.probes.PROBES`, so a newly registered type is covered at once and a type without a driver here
FAILS. For every type: strict settings that `continuity schema` describes, a one-line description, a
ProbeResult (never an exception) for success and every failure class that applies — connection refused,
a peer that accepts and never answers (0.3 s timeouts), HTTP 4xx/5xx, SMTP, IMAP, DNS and SIP refusals —
against real peers on 127.0.0.1 (http.server, aiosmtpd, Dovecot, SIPp, raw sockets), and no secret in any
result's reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from continuity.clock import SystemClock
from continuity.probes import PROBES, probe_class
from continuity.probes.base import Probe, ProbeContext, ProbeResult
from tests import test_registry_contracts as contracts
from tests.probes import conftest as probepeers
from tests.probes import peerfixtures
from tests.probes.conftest import DATA, DnsPeer, HttpPeer, run_check
from tests.probes.mailpeers import DovecotServer, MailUser, SippServer, SmtpRelay, closed_udp_port, free_port
from tests.probes.test_smtp import greeting_server_check
from tests.sinks import conftest as sinkpeers
from tests.test_registry_contracts import (
    TIMEOUT,
    has_ref,
    leaked,
    resolve,
    schema_gaps,
    secret_fields,
    unknown_key_refused,
)

# Shared fixtures, bound to module names (pytest finds a fixture by the name it has in the module).
http_peer = probepeers.http_peer
tcp_peer = probepeers.tcp_peer
blackhole_port = probepeers.blackhole_port
dns_peer = probepeers.dns_peer
silent_port = sinkpeers.silent_port
dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user
smtp_relay = peerfixtures.smtp_relay
sipp_ok = peerfixtures.sipp_ok
sipp_unavailable = peerfixtures.sipp_unavailable
silent_udp = peerfixtures.silent_udp
closed_udp = peerfixtures.closed_udp
cli_schema = contracts.cli_schema

SMTP_USER = "ops"
# Recognisable secrets, reached only through `${VAR}` references (the loader's way).
ENV: dict[str, str] = {
    "HTTP_QUERY_TOKEN": "qtok-Zq9Hh4Jj6Kk8Ll0Pp",
    "HTTP_API_KEY": "apikey-Zq9Aa1Ss2Dd3Ff4",
    "HTTP_BEARER": "bearer-Zq9Gg5Hh6Jj7Kk8",
    "SMTP_PROBE_PW": "smtpprobe-Zq9Xx1Cc2Vv3",
    "SMTP_PW_WRONG": "Wr0ng-Zq9-smtp-pa55word",
    "IMAP_PW": "pw-Imap-s3cret",  # what peerfixtures.mail_user's mailbox accepts (set again from the fixture)
    "IMAP_PW_WRONG": "Wr0ng-Zq9-imap-pa55word",
    "STATUSPAGE_KEY": "spkey-Zq9Bb4Nn5Mm6Qq7",
    "CANARY_SMTP_PW": "canary-Zq9Ww8Ee9Rr0Tt",
    "VOLUME_QUERY_KEY": "volq-Zq9Yy1Uu2Ii3Oo4",
    "VOLUME_API_KEY": "volkey-Zq9Pp5Aa6Ss7Dd",
    "VOLUME_BEARER": "volbear-Zq9Ff8Gg9Hh0Jj",
}

UP = frozenset({"up"})
DOWN = frozenset({"down"})


@dataclass(frozen=True)
class Case:
    """A failure class of one probe type: the settings variant it starts from and the statuses it may give."""

    expect: frozenset[str] = DOWN
    variant: str = "default"


@dataclass
class Ctx:
    request: pytest.FixtureRequest
    tmp_path: Path
    environ: dict[str, str] = field(default_factory=lambda: dict(ENV))

    def peer(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


class ProbeDriver:
    """How to exercise one probe type. `examples` are valid settings (secrets as `${VAR}`) by variant, the
    base of every case; `prepare` sets up or points at the peer for a case and returns the settings to change."""

    examples: ClassVar[dict[str, dict[str, Any]]]
    cases: ClassVar[dict[str, Case]]

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        return {}

    def exercise(self, ctx: Ctx, case: str, build: Any, raw: dict[str, Any]) -> ProbeResult:
        return run_check(build(raw))


def http_reply(peer: HttpPeer, path: str, case: str, ok_body: str = "ok",
               content_type: str = "text/plain; charset=utf-8") -> None:
    """The loopback HTTP peer set up for one of the HTTP cases; error pages repeat the request's secrets."""
    echo = f"refused: query {ENV['HTTP_QUERY_TOKEN']} key {ENV['HTTP_API_KEY']} bearer {ENV['HTTP_BEARER']}"
    if case == "timeout":
        peer.reply(path, hang=True)
    elif case == "http_4xx":
        peer.reply(path, status=401, body=json.dumps({"error": echo}), content_type="application/json")
    elif case == "http_5xx":
        peer.reply(path, status=503, body=json.dumps({"error": echo}), content_type="application/json")
    else:
        peer.reply(path, body=ok_body, content_type=content_type)


HTTP_CASES = {"success": Case(UP), "refused": Case(), "timeout": Case(), "http_4xx": Case(), "http_5xx": Case()}


class HttpDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {
        "url": "http://127.0.0.1:9/health?token=${HTTP_QUERY_TOKEN}", "headers": {"X-Api-Key": "${HTTP_API_KEY}"},
        "bearer_token": "${HTTP_BEARER}", "timeout": "5s",
    }}
    cases = HTTP_CASES

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"url": f"http://127.0.0.1:{free_port()}/health?token=${{HTTP_QUERY_TOKEN}}"}
        peer: HttpPeer = ctx.peer("http_peer")
        http_reply(peer, "/health", case)
        return {"url": peer.url("/health") + "?token=${HTTP_QUERY_TOKEN}",
                **({"timeout": TIMEOUT} if case == "timeout" else {})}


class TcpDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {"host": "127.0.0.1", "port": 9, "timeout": "5s"}}
    cases: ClassVar[dict[str, Case]] = {"success": Case(UP), "refused": Case(), "timeout": Case()}

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"port": free_port()}
        if case == "timeout":  # a full accept queue: the SYN is dropped and connect() hangs
            return {"port": ctx.peer("blackhole_port"), "timeout": TIMEOUT}
        return {"port": ctx.peer("tcp_peer").port}


class DnsDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {
        "query": "example.test", "resolver": "127.0.0.1:9", "expect": ["192.0.2.10"], "timeout": "5s",
    }}
    cases: ClassVar[dict[str, Case]] = {"success": Case(UP), "refused": Case(), "timeout": Case(),
                                        "dns_servfail": Case(), "dns_nxdomain": Case(), "dns_wrong_answer": Case()}

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":  # nothing bound: ICMP port unreachable, or no answer at all
            return {"resolver": f"127.0.0.1:{closed_udp_port()}", "timeout": TIMEOUT}
        peer: DnsPeer = ctx.peer("dns_peer")
        peer.add("example.test", "A", "192.0.2.10")
        extra: dict[str, Any] = {}
        if case == "timeout":
            peer.mode = "silent"
            extra = {"timeout": TIMEOUT}
        if case == "dns_servfail":
            peer.mode = "servfail"
        if case == "dns_nxdomain":
            extra = {"query": "gone.example.test"}
        if case == "dns_wrong_answer":
            extra = {"expect": ["192.0.2.99"]}
        return {"resolver": peer.address, **extra}


class SmtpDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {
        "host": "127.0.0.1", "port": 9, "username": SMTP_USER, "password": "${SMTP_PROBE_PW}", "timeout": "5s",
    }}
    cases: ClassVar[dict[str, Case]] = {"success": Case(UP), "refused": Case(), "timeout": Case(),
                                        "smtp_auth_535": Case(), "smtp_greeting_554": Case()}

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"port": free_port()}
        if case == "timeout":  # accepts, never greets
            return {"port": ctx.peer("silent_port"), "timeout": TIMEOUT}
        if case == "smtp_greeting_554":
            return {}  # greeting_server_check picks the port
        relay = ctx.peer("probe_smtp")
        return {"port": relay.port, **({"password": "${SMTP_PW_WRONG}"} if case == "smtp_auth_535" else {})}

    def exercise(self, ctx: Ctx, case: str, build: Any, raw: dict[str, Any]) -> ProbeResult:
        if case != "smtp_greeting_554":
            return run_check(build(raw))
        settings = {k: v for k, v in raw.items() if k not in ("host", "port")}

        def make(cls: type[Probe], /, **given: Any) -> Probe:
            return build({**given, **settings})

        return greeting_server_check(b"554 5.3.2 mx.example.test no SMTP service here\r\n", {}, make)


@pytest.fixture
def probe_smtp() -> Any:
    """aiosmtpd that takes and drops mail; AUTH PLAIN checks SMTP_USER / the probe's recognisable password."""
    with SmtpRelay(mode="swallow", credentials=(SMTP_USER, ENV["SMTP_PROBE_PW"])) as server:
        yield server


class ImapDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {
        "host": "127.0.0.1", "port": 9, "username": "support@example.test", "password": "${IMAP_PW}",
        "timeout": "5s",
    }}
    cases: ClassVar[dict[str, Case]] = {"success": Case(UP), "refused": Case(), "timeout": Case(),
                                        "imap_login_refused": Case(), "imap_no_mailbox": Case()}

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"port": free_port()}
        if case == "timeout":  # accepts, never greets
            return {"port": ctx.peer("silent_port"), "timeout": TIMEOUT}
        server: DovecotServer = ctx.peer("dovecot")
        user: MailUser = ctx.peer("mail_user")
        ctx.environ["IMAP_PW"] = user.password
        extra: dict[str, Any] = {}
        if case == "imap_login_refused":
            extra = {"password": "${IMAP_PW_WRONG}"}
        if case == "imap_no_mailbox":
            extra = {"mailbox": "Nowhere"}
        return {"host": server.host, "port": server.imap_port, "username": user.address, **extra}


class SipOptionsDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {"host": "127.0.0.1", "port": 9, "timeout": "5s"}}
    cases: ClassVar[dict[str, Case]] = {"success": Case(UP), "refused": Case(), "timeout": Case(),
                                        "sip_503": Case()}

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"port": ctx.peer("closed_udp")}
        if case == "timeout":
            return {"port": ctx.peer("silent_udp").port, "timeout": TIMEOUT}
        server: SippServer = ctx.peer("sipp_unavailable" if case == "sip_503" else "sipp_ok")
        return {"host": server.host, "port": server.port}


SUMMARY: dict[str, Any] = json.loads((DATA / "summary.json").read_text())
SUMMARY_PATH = "/api/v2/summary.json"


class StatuspageDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {
        "url": "http://127.0.0.1:9/api/v2/summary.json?api_key=${STATUSPAGE_KEY}", "component": "Voice Calls",
        "timeout": "5s",
    }}
    cases: ClassVar[dict[str, Case]] = {**HTTP_CASES, "component_major_outage": Case()}

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"url": f"http://127.0.0.1:{free_port()}{SUMMARY_PATH}?api_key=${{STATUSPAGE_KEY}}"}
        peer: HttpPeer = ctx.peer("http_peer")
        summary = SUMMARY
        if case == "component_major_outage":
            summary = json.loads(json.dumps(SUMMARY))
            for comp in summary["components"]:
                if comp["name"] == "Voice Calls":
                    comp["status"] = "major_outage"
        http_reply(peer, SUMMARY_PATH, case, json.dumps(summary), "application/json")
        return {"url": peer.url(SUMMARY_PATH) + "?api_key=${STATUSPAGE_KEY}",
                **({"timeout": TIMEOUT} if case == "timeout" else {})}


class MailCanaryDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {
        "smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_username": SMTP_USER, "smtp_password": "${CANARY_SMTP_PW}",
        "sender": "Continuity <continuity@example.test>", "recipient": "support@example.test",
        "imap_host": "127.0.0.1", "imap_port": 9, "imap_username": "support@example.test",
        "imap_password": "${IMAP_PW}", "deadline": "5s", "timeout": "10s", "poll_every": "1s",
    }}
    cases: ClassVar[dict[str, Case]] = {
        "success": Case(UP), "smtp_refused": Case(), "imap_refused": Case(), "smtp_timeout": Case(),
        "imap_timeout": Case(), "smtp_rcpt_550": Case(), "smtp_auth_535": Case(), "imap_login_refused": Case(),
        "not_delivered": Case(),
    }

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        short = {"timeout": TIMEOUT, "deadline": TIMEOUT, "poll_every": TIMEOUT / 3}
        if case == "imap_refused":
            return {"imap_port": free_port()}
        if case == "imap_timeout":
            return {"imap_port": ctx.peer("silent_port"), **short}
        server: DovecotServer = ctx.peer("dovecot")
        user: MailUser = ctx.peer("mail_user")
        ctx.environ["IMAP_PW"] = user.password
        mailbox = {"imap_host": server.host, "imap_port": server.imap_port, "imap_username": user.address,
                   "recipient": user.address}
        if case == "smtp_refused":
            return {**mailbox, "smtp_port": free_port()}
        if case == "smtp_timeout":
            return {**mailbox, "smtp_port": ctx.peer("silent_port"), **short}
        relay: SmtpRelay = ctx.peer("smtp_relay")
        relay.credentials = (SMTP_USER, ENV["CANARY_SMTP_PW"])
        extra: dict[str, Any] = {}
        if case == "smtp_rcpt_550":
            relay.mode = "refuse"
        if case == "smtp_auth_535":
            extra = {"smtp_password": "${SMTP_PW_WRONG}"}
        if case == "imap_login_refused":
            extra = {"imap_password": "${IMAP_PW_WRONG}"}
        if case == "not_delivered":
            relay.mode = "swallow"
            extra = {"deadline": TIMEOUT, "timeout": "5s", "poll_every": TIMEOUT / 3}
        return {**mailbox, "smtp_port": relay.port, **extra}


class VolumeDriver(ProbeDriver):
    examples: ClassVar[dict[str, dict[str, Any]]] = {
        "http": {"source": "http", "url": "http://127.0.0.1:9/api/queue?key=${VOLUME_QUERY_KEY}", "pointer": "/open",
                 "headers": {"X-Api-Key": "${VOLUME_API_KEY}"}, "bearer_token": "${VOLUME_BEARER}",
                 "threshold": 100, "timeout": "5s"},
        "imap": {"source": "imap", "host": "127.0.0.1", "port": 9, "username": "support@example.test",
                 "password": "${IMAP_PW}", "threshold": 100, "timeout": "5s"},
    }
    cases: ClassVar[dict[str, Case]] = {
        **{name: Case(c.expect, "http") for name, c in HTTP_CASES.items()},
        "imap_success": Case(UP, "imap"), "imap_refused": Case(variant="imap"), "imap_timeout": Case(variant="imap"),
        "imap_login_refused": Case(variant="imap"),
    }

    def prepare(self, ctx: Ctx, case: str) -> dict[str, Any]:
        if case == "refused":
            return {"url": f"http://127.0.0.1:{free_port()}/api/queue?key=${{VOLUME_QUERY_KEY}}"}
        if case == "imap_refused":
            return {"port": free_port()}
        if case == "imap_timeout":
            return {"port": ctx.peer("silent_port"), "timeout": TIMEOUT}
        if case.startswith("imap_"):
            server: DovecotServer = ctx.peer("dovecot")
            user: MailUser = ctx.peer("mail_user")
            ctx.environ["IMAP_PW"] = user.password
            extra = {"password": "${IMAP_PW_WRONG}"} if case == "imap_login_refused" else {}
            return {"host": server.host, "port": server.imap_port, "username": user.address, **extra}
        peer: HttpPeer = ctx.peer("http_peer")
        http_reply(peer, "/api/queue", case, json.dumps({"open": 12}), "application/json")
        return {"url": peer.url("/api/queue") + "?key=${VOLUME_QUERY_KEY}",
                **({"timeout": TIMEOUT} if case == "timeout" else {})}


class HeartbeatDriver(ProbeDriver):
    """No peer: the probe reads what the daemon heard. `success` was heard a moment ago, `silent` long ago,
    `never` not since the record began; `cli` is `continuity check`, which hears nobody (not a failure)."""

    examples: ClassVar[dict[str, dict[str, Any]]] = {"default": {"vantage": "office", "max_silence": "90s"}}
    cases: ClassVar[dict[str, Case]] = {"success": Case(UP), "silent": Case(), "never": Case(),
                                        "cli": Case(frozenset({"degraded"}))}

    def exercise(self, ctx: Ctx, case: str, build: Any, raw: dict[str, Any]) -> ProbeResult:
        from datetime import UTC, datetime, timedelta

        from continuity.probes.heartbeat import Heard

        probe = build(raw)
        now = datetime.now(UTC)
        if case != "cli":
            probe.heard = Heard(now - timedelta(minutes=10))
            if case == "success":
                probe.heard.hear("office", now - timedelta(seconds=5))
            elif case == "silent":
                probe.heard.hear("office", now - timedelta(seconds=91))
            probe.heard.hear("branch", now)  # another vantage heard says nothing about this one
        return run_check(probe)


DRIVERS: dict[str, ProbeDriver] = {
    "heartbeat": HeartbeatDriver(),
    "http": HttpDriver(),
    "tcp": TcpDriver(),
    "dns": DnsDriver(),
    "smtp": SmtpDriver(),
    "imap": ImapDriver(),
    "sip_options": SipOptionsDriver(),
    "statuspage": StatuspageDriver(),
    "mail_canary": MailCanaryDriver(),
    "volume": VolumeDriver(),
}


def driver_for(type_name: str) -> ProbeDriver:
    driver = DRIVERS.get(type_name)
    if driver is None:
        pytest.fail(f"probe type {type_name!r} is registered in continuity/probes/__init__.py but "
                    "tests/test_registry_contracts_probes.py has no driver for it: add one to DRIVERS (its settings, "
                    "its failure classes and how to run it against a loopback peer)")
    return driver


def case_params() -> list[Any]:
    params = []
    for type_name in sorted(PROBES):
        driver = DRIVERS.get(type_name)
        if driver is None:
            params.append(pytest.param(type_name, "no-driver", id=f"{type_name}-no-driver"))
            continue
        params += [pytest.param(type_name, case, id=f"{type_name}-{case}") for case in driver.cases]
    return params


def validated(cls: type[Probe], raw: dict[str, Any], environ: dict[str, str]) -> Any:
    return cls.Settings.model_validate({**resolve(raw, environ), "type": cls.type_name})


# ---------------------------------------------------------------------------------------------------------------
# The contracts
# ---------------------------------------------------------------------------------------------------------------


def test_every_driver_is_for_a_registered_type() -> None:
    assert sorted(set(DRIVERS) - set(PROBES)) == [], "drivers for probe types that are no longer registered"


@pytest.mark.parametrize("type_name", sorted(PROBES))
def test_class_matches_its_registry_entry(type_name: str) -> None:
    cls = probe_class(type_name)
    assert issubclass(cls, Probe)
    assert cls.type_name == type_name
    assert issubclass(cls.Settings, BaseModel)


@pytest.mark.parametrize("type_name", sorted(PROBES))
def test_description_is_one_non_empty_line(type_name: str) -> None:
    text = probe_class(type_name).description
    assert text.strip(), f"probe type {type_name!r} has no description"
    assert "\n" not in text and "\r" not in text, f"the description of {type_name!r} is not one line: {text!r}"
    assert text == text.strip(), f"the description of {type_name!r} has stray whitespace: {text!r}"


@pytest.mark.parametrize("type_name", sorted(PROBES))
def test_settings_refuse_an_unknown_key(type_name: str) -> None:
    cls = probe_class(type_name)
    for variant, example in driver_for(type_name).examples.items():
        problem = unknown_key_refused(cls.Settings, {**resolve(example, ENV), "type": type_name})
        assert problem is None, f"probe type {type_name!r} ({variant} settings): {problem}"


@pytest.mark.parametrize("type_name", sorted(PROBES))
def test_type_and_every_setting_are_in_the_cli_schema(type_name: str, cli_schema: dict[str, Any]) -> None:
    # Where probes go in the config: channels.<name>.health.probes[] (and surge.probes[] for volume probes).
    defs = cli_schema.get("$defs", {})
    places = [defs[holder]["properties"]["probes"].get("items", {}) for holder in ("Health", "Surge")
              if "probes" in defs.get(holder, {}).get("properties", {})]
    assert places, "`continuity schema` has no place for probes (no Health.probes or Surge.probes)"
    problem = schema_gaps(cli_schema, places, type_name, probe_class(type_name).Settings)
    assert problem is None, problem


@pytest.mark.parametrize("type_name", sorted(PROBES))
def test_secret_settings_are_exercised_through_env_refs(type_name: str) -> None:
    cls = probe_class(type_name)
    examples = driver_for(type_name).examples.values()
    unset = [name for name in secret_fields(cls.Settings) if not any(has_ref(e.get(name)) for e in examples)]
    assert unset == [], (f"probe type {type_name!r} takes secrets in {unset}; its driver must set each through a "
                         "${VAR} reference so the results can be checked for it")


@pytest.mark.parametrize(("type_name", "case"), case_params())
def test_result_for_each_failure_class_shows_no_secret(type_name: str, case: str, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    driver = driver_for(type_name)
    cls = probe_class(type_name)
    ctx = Ctx(request, tmp_path)
    spec = driver.cases[case]
    raw = {**driver.examples[spec.variant], **driver.prepare(ctx, case)}

    def build(settings: dict[str, Any]) -> Probe:
        return cls(validated(cls, settings, ctx.environ), ProbeContext(tmp_path, SystemClock()))

    try:
        result = driver.exercise(ctx, case, build, raw)
    except Exception as exc:  # the contract: a probe reports a failing peer, it never raises
        pytest.fail(f"probe type {type_name!r}, case {case}: raised {type(exc).__name__}: {exc} instead of "
                    "returning a ProbeResult")
    assert isinstance(result, ProbeResult), f"{type_name} {case}: returned {result!r}, not a ProbeResult"
    problems = []
    if result.status not in spec.expect:
        problems.append(f"status {result.status!r}, expected one of {sorted(spec.expect)}")
    if result.status != "up" and not result.reason.strip():
        problems.append("a failure without a reason saying why")
    shown = leaked(f"{result.reason} {result.probe}", ctx.environ.values())
    if shown:
        problems.append(f"the reason shows the secret(s) {shown}")
    assert not problems, f"probe type {type_name!r}, case {case}: {'; '.join(problems)} — result {result!r}"
