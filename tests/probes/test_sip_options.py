"""SIP OPTIONS probe against SIPp (200 and 503), a silent UDP port, a closed one, and hand-made answers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pydantic import ValidationError

from continuity.probes.base import ProbeResult
from continuity.probes.sip_options import SipOptionsProbe, SipOptionsSettings, parse_response
from tests.probes import peerfixtures
from tests.probes.conftest import MakeProbe
from tests.probes.mailpeers import SilentUdpPort, SippServer, free_port

# Shared fixtures (pytest finds a fixture by its module-level name).
closed_udp = peerfixtures.closed_udp
silent_udp = peerfixtures.silent_udp
sipp_ok = peerfixtures.sipp_ok
sipp_unavailable = peerfixtures.sipp_unavailable


def check(probe: SipOptionsProbe) -> ProbeResult:
    return asyncio.run(probe.check())


def test_200_is_up(sipp_ok: SippServer, make_probe: MakeProbe) -> None:
    result = check(make_probe(SipOptionsProbe, host=sipp_ok.host, port=sipp_ok.port, name="pbx"))
    assert (result.status, result.reason, result.probe) == ("up", "", "pbx")
    assert result.latency < 1


def test_503_is_down_with_the_status_line(sipp_unavailable: SippServer, make_probe: MakeProbe) -> None:
    result = check(make_probe(SipOptionsProbe, host=sipp_unavailable.host, port=sipp_unavailable.port))
    assert (result.status, result.reason) == ("down", "SIP 503 Service Unavailable")


def test_a_configured_code_counts_as_up(sipp_unavailable: SippServer, make_probe: MakeProbe) -> None:
    probe = make_probe(SipOptionsProbe, host=sipp_unavailable.host, port=sipp_unavailable.port, up_codes=[503])
    assert check(probe).status == "up"


def test_over_tcp(make_probe: MakeProbe) -> None:
    with SippServer("200 OK", transport="tcp") as server:
        result = check(make_probe(SipOptionsProbe, host=server.host, port=server.port, transport="tcp"))
    assert result.status == "up", result.reason


def test_silent_port_times_out_after_retransmitting(silent_udp: SilentUdpPort,
                                                    make_probe: MakeProbe) -> None:
    result = check(make_probe(SipOptionsProbe, host="127.0.0.1", port=silent_udp.port, timeout=2))
    assert result.status == "down"
    # Sent at 0, 0.5 and 1.5 s (timer E doubles from T1 = 0.5 s).
    assert result.reason == "timed out after 2s (no answer to 3 OPTIONS)"
    assert 1.9 < result.latency < 2.5
    received = silent_udp.received()
    assert len(received) >= 2
    first = received[0].decode()
    assert first.startswith(f"OPTIONS sip:127.0.0.1:{silent_udp.port} SIP/2.0\r\n")
    for header in ("Via: SIP/2.0/UDP 127.0.0.1:", ";branch=z9hG4bK", "Max-Forwards: 70", "CSeq: 1 OPTIONS",
                   "Content-Length: 0\r\n\r\n", "From: <sip:continuity@127.0.0.1>;tag="):
        assert header in first
    assert all(d == received[0] for d in received)  # a retransmission repeats the request byte for byte


def test_closed_port_is_port_unreachable(closed_udp: int, make_probe: MakeProbe) -> None:
    result = check(make_probe(SipOptionsProbe, host="127.0.0.1", port=closed_udp))
    assert (result.status, result.reason) == ("down", "port unreachable")
    assert result.latency < 0.5


def test_closed_tcp_port_is_refused(make_probe: MakeProbe) -> None:
    result = check(make_probe(SipOptionsProbe, host="127.0.0.1", port=free_port(), transport="tcp"))
    assert (result.status, result.reason) == ("down", "connection refused")


# Hand-made answers: provisional first, strays, other codes --------------------------------------------------

Answer = Callable[[bytes], list[bytes]]


def reply_to(request: bytes, status: str, extra: str = "", branch: str | None = None,
             call_id: str | None = None) -> bytes:
    """A response to `request` built from its headers, as a SIP server would."""
    head = request.decode().split("\r\n\r\n", 1)[0].split("\r\n")
    headers = {line.split(":", 1)[0]: line for line in head[1:]}
    via = headers["Via"]
    if branch is not None:
        via = via.split(";branch=")[0] + f";branch={branch}"
    cid = headers["Call-ID"] if call_id is None else f"Call-ID: {call_id}"
    lines = [f"SIP/2.0 {status}", via, headers["From"], headers["To"] + ";tag=pbx", cid, headers["CSeq"]]
    return ("\r\n".join(lines) + extra + "\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.fixture
def scripted_pbx() -> Iterator[tuple[int, list[Answer]]]:
    """A UDP server answering each request with what the test's script returns (in a thread)."""
    script: list[Answer] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except TimeoutError:
                continue
            if script:
                for answer in script[0](data):
                    sock.sendto(answer, addr)
                if len(script) > 1:
                    script.pop(0)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], script
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_provisional_answers_are_waited_out(scripted_pbx: tuple[int, list[Answer]], make_probe: MakeProbe) -> None:
    port, script = scripted_pbx
    script.append(lambda req: [reply_to(req, "100 Trying"), reply_to(req, "180 Ringing"), reply_to(req, "200 OK")])
    result = check(make_probe(SipOptionsProbe, host="127.0.0.1", port=port))
    assert result.status == "up", result.reason


def test_stray_answers_are_ignored(scripted_pbx: tuple[int, list[Answer]], make_probe: MakeProbe) -> None:
    port, script = scripted_pbx
    script.append(lambda req: [
        reply_to(req, "503 Wrong Transaction", branch="z9hG4bKother"),
        reply_to(req, "503 Wrong Call", call_id="someone-else"),
        b"garbage\r\n\r\n",
        reply_to(req, "200 OK"),
    ])
    result = check(make_probe(SipOptionsProbe, host="127.0.0.1", port=port))
    assert result.status == "up", result.reason


def test_a_lost_answer_is_recovered_by_retransmission(scripted_pbx: tuple[int, list[Answer]],
                                                      make_probe: MakeProbe) -> None:
    port, script = scripted_pbx
    script.extend([lambda req: [], lambda req: [reply_to(req, "200 OK")]])
    started = time.perf_counter()
    result = check(make_probe(SipOptionsProbe, host="127.0.0.1", port=port))
    assert result.status == "up", result.reason
    assert 0.4 < time.perf_counter() - started < 1.5


@pytest.mark.parametrize(("status", "up_codes", "expected"), [
    ("200 OK", [], ("up", "")),
    ("202 Accepted", [], ("up", "")),
    ("404 Not Found", [], ("down", "SIP 404 Not Found")),
    ("404 Not Found", [404, 405], ("up", "")),
    ("481 Call/Transaction Does Not Exist", [481], ("up", "")),
    ("486 Busy Here", [], ("down", "SIP 486 Busy Here")),
    ("603 Decline", [], ("down", "SIP 603 Decline")),
])
def test_final_answers(status: str, up_codes: list[int], expected: tuple[str, str],
                       scripted_pbx: tuple[int, list[Answer]], make_probe: MakeProbe) -> None:
    port, script = scripted_pbx
    script.append(lambda req: [reply_to(req, status)])
    result = check(make_probe(SipOptionsProbe, host="127.0.0.1", port=port, up_codes=up_codes))
    assert (result.status, result.reason) == expected


def test_parser_reads_compact_and_folded_headers() -> None:
    raw = (b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 10.0.0.1:5060;rport=5060;branch=z9hG4bKabc,"
           b" SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKdef\r\ni: 42@host\r\nCSeq: 1\r\n OPTIONS\r\nl: 0\r\n\r\n")
    response = parse_response(raw)
    assert response is not None
    assert (response.code, response.reason, response.branch) == (200, "OK", "z9hG4bKabc")
    assert response.header("call-id") == "42@host"
    assert response.header("CSeq") == "1 OPTIONS"
    assert parse_response(b"OPTIONS sip:x SIP/2.0\r\n\r\n") is None


@pytest.mark.parametrize("settings", [
    {"host": "pbx", "up_codes": [100]},
    {"host": "pbx", "uri": "http://pbx"},
    {"host": "pbx", "uri": "sip:pbx\r\nX-Injected: 1"},
    {"host": "pbx", "from_user": "a b"},
    {"host": "pbx", "transport": "tls"},
    {"host": "pbx pbx"},
])
def test_bad_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SipOptionsSettings.model_validate({"type": "sip_options", **settings})
