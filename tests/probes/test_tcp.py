"""TcpProbe against real loopback sockets: a listener, a closed port, and a listener whose queue is full."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import time
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.probes import probe_class
from continuity.probes.tcp import TcpProbe, describe_network_error
from tests.probes.conftest import MakeProbe, TcpPeer, free_port, run_check

MS = timedelta(milliseconds=1)


def wait_for(predicate: Any, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_listening_port_is_up_and_the_connection_is_closed(tcp_peer: TcpPeer, make_probe: MakeProbe) -> None:
    result = run_check(make_probe(TcpProbe, host="127.0.0.1", port=tcp_peer.port, name="pbx"))
    assert (result.status, result.reason, result.probe) == ("up", "", "pbx")
    assert 0 < result.latency < 1
    # The probe hangs up at once instead of leaving the peer with a half-open connection.
    assert wait_for(lambda: tcp_peer.closed_by_client == 1)
    assert tcp_peer.accepted == 1


def test_bracketed_ipv6_host_and_localhost_name(tcp_peer: TcpPeer, make_probe: MakeProbe) -> None:
    probe = make_probe(TcpProbe, host="localhost", port=tcp_peer.port)
    assert run_check(probe).status == "up"
    assert make_probe(TcpProbe, host="[::1]", port=1).settings.host == "::1"


def test_closed_port_is_down_refused(make_probe: MakeProbe) -> None:
    result = run_check(make_probe(TcpProbe, host="127.0.0.1", port=free_port()))
    assert (result.status, result.reason) == ("down", "connection refused")
    assert result.latency < 1


def test_full_accept_queue_times_out(blackhole_port: int, make_probe: MakeProbe) -> None:
    """A listener whose backlog is full drops new SYNs: the connect hangs until the probe's own timeout."""
    started = time.perf_counter()
    result = run_check(make_probe(TcpProbe, host="127.0.0.1", port=blackhole_port, timeout=200 * MS))
    assert (result.status, result.reason) == ("down", "timed out after 0.2s")
    assert 0.19 < result.latency < 0.6
    assert time.perf_counter() - started < 1.5


def test_unknown_host_names_it(make_probe: MakeProbe) -> None:
    """`.invalid` never resolves (RFC 6761); the resolver answers from its own rules, no network needed."""
    result = run_check(make_probe(TcpProbe, host="pbx.example.invalid", port=5060, timeout=2))
    assert result.status == "down"
    # Without any resolver configured the lookup may also just fail or time out; it never reads "up".
    assert re.match(r"cannot resolve host 'pbx\.example\.invalid'|timed out", result.reason), result.reason


def test_many_checks_leave_no_connection_open(tcp_peer: TcpPeer, make_probe: MakeProbe) -> None:
    probe = make_probe(TcpProbe, host="127.0.0.1", port=tcp_peer.port)

    async def go() -> list[str]:
        return [(await probe.check()).status for _ in range(5)]

    assert asyncio.run(go()) == ["up"] * 5
    assert wait_for(lambda: tcp_peer.closed_by_client == 5)


@pytest.mark.parametrize(("exc", "reason"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connection refused"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "connection reset by peer"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "host unreachable"),
    (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 1), [Errno 111] Connect call failed"),
     "connection refused"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "cannot resolve host 'x.test'"),
    (OSError(errno.EACCES, "Permission denied"), "permission denied"),
    (RuntimeError("x" * 300), "x" * 197 + "..."),
], ids=["refused", "reset", "unreachable", "multi-address", "gaierror", "strerror", "long"])
def test_describe_network_error(exc: BaseException, reason: str) -> None:
    assert describe_network_error(exc, "x.test") == reason


def test_describe_walks_the_chain() -> None:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        except OSError as inner:
            raise RuntimeError("client library wrapper") from inner
    except RuntimeError as outer:
        assert describe_network_error(outer) == "connection refused"


@pytest.mark.parametrize(("settings", "message"), [
    ({"host": "tcp://pbx.example.test", "port": 5060}, "bare name or address"),
    ({"host": "pbx.example.test/x", "port": 5060}, "bare name or address"),
    ({"host": "", "port": 5060}, "at least 1 character"),
    ({"host": "pbx", "port": 0}, "greater than or equal to 1"),
    ({"host": "pbx", "port": 70000}, "less than or equal to 65535"),
    ({"host": "pbx"}, "port\n  Field required"),
    ({"host": "pbx", "port": 1, "retries": 2}, "Extra inputs are not permitted"),
], ids=["scheme", "path", "empty", "port 0", "port high", "no port", "unknown key"])
def test_settings_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        probe_class("tcp").Settings.model_validate({"type": "tcp", **settings})
