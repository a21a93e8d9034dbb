"""Probes say who they are: the http and SIP OPTIONS probes name their vantage in the User-Agent, so the
probed side can tell vantages apart in its logs, and a peer can fail for one vantage only (real loopback
servers that judge each request by its User-Agent)."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from continuity import __version__
from continuity.clock import SystemClock
from continuity.probes.base import ProbeContext, ProbeResult
from continuity.probes.http import HttpProbe
from continuity.probes.sip_options import SipOptionsProbe

VANTAGE_UA = re.compile(r"\(vantage ([a-z0-9_-]+)\)")


def vantage_of(user_agent: str) -> str | None:
    m = VANTAGE_UA.search(user_agent)
    return m.group(1) if m else None


class PickyHttp:
    """Answers 503 to the vantages in `failing` (told by the User-Agent), 200 to everyone else."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.agents: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                agent = self.headers.get("User-Agent", "")
                peer.agents.append(agent)
                code = 503 if vantage_of(agent) in peer.failing else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PickySip:
    """A UDP SIP responder: `503 Service Unavailable` to the vantages in `failing`, `200 OK` to the others."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.agents: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            lines = data.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)}
            agent = headers.get("user-agent", "")
            self.agents.append(agent)
            status = "503 Service Unavailable" if vantage_of(agent) in self.failing else "200 OK"
            echoed = [f"{name}: {headers[name.lower()]}" for name in ("Via", "From", "To", "Call-ID", "CSeq")]
            answer = "\r\n".join([f"SIP/2.0 {status}", *echoed, "Content-Length: 0", "", ""])
            self.sock.sendto(answer.encode(), addr)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def picky_http() -> Iterator[PickyHttp]:
    peer = PickyHttp({"office"})
    yield peer
    peer.close()


@pytest.fixture
def picky_sip() -> Iterator[PickySip]:
    peer = PickySip({"office"})
    yield peer
    peer.close()


def run_at(cls: Any, vantage: str | None, tmp_path: Path, **settings: Any) -> ProbeResult:
    probe = cls(cls.Settings.model_validate({**settings, "type": cls.type_name}),
                ProbeContext(tmp_path, SystemClock(), vantage=vantage))

    async def go() -> ProbeResult:
        try:
            return await probe.check()  # type: ignore[no-any-return]
        finally:
            await probe.aclose()

    return asyncio.run(go())


def test_the_context_names_version_and_vantage(tmp_path: Path) -> None:
    assert ProbeContext(tmp_path, SystemClock(), "office").user_agent == f"continuity/{__version__} (vantage office)"
    assert ProbeContext(tmp_path, SystemClock()).user_agent == f"continuity/{__version__}"


def test_the_http_peer_fails_for_the_office_only(picky_http: PickyHttp, tmp_path: Path) -> None:
    office = run_at(HttpProbe, "office", tmp_path, url=picky_http.url)
    central = run_at(HttpProbe, "central", tmp_path, url=picky_http.url)
    assert (office.status, office.reason) == ("down", "HTTP 503")
    assert central.status == "up"
    assert picky_http.agents == [f"continuity/{__version__} (vantage office)",
                                 f"continuity/{__version__} (vantage central)"]


def test_a_probes_own_user_agent_header_wins(picky_http: PickyHttp, tmp_path: Path) -> None:
    result = run_at(HttpProbe, "office", tmp_path, url=picky_http.url, headers={"User-Agent": "shop-monitor/2"})
    assert result.status == "up" and picky_http.agents == ["shop-monitor/2"]


def test_the_sip_peer_fails_for_the_office_only(picky_sip: PickySip, tmp_path: Path) -> None:
    office = run_at(SipOptionsProbe, "office", tmp_path, host="127.0.0.1", port=picky_sip.port, timeout=2)
    central = run_at(SipOptionsProbe, "central", tmp_path, host="127.0.0.1", port=picky_sip.port, timeout=2)
    assert (office.status, office.reason) == ("down", "SIP 503 Service Unavailable")
    assert central.status == "up", central.reason
    assert picky_sip.agents == [f"continuity/{__version__} (vantage office)",
                                f"continuity/{__version__} (vantage central)"]
