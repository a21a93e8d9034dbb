"""Real loopback peers for the probe tests: an HTTP(S) server, a DNS server, and TCP listeners, each set per test.

Nothing here mocks a client library: the probes talk to sockets on 127.0.0.1 exactly as they would in
production. Every server is stopped and every socket closed at teardown (pytest runs with -W error).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from continuity.clock import SystemClock
from continuity.probes.base import Probe, ProbeContext, ProbeResult

DATA = Path(__file__).parent / "data"
P = TypeVar("P", bound=Probe)


def free_port() -> int:
    """A port nothing listens on (bound, read and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# Building and running probes ----------------------------------------------------------------------------------

MakeProbe = Callable[..., Any]


@pytest.fixture
def make_probe(tmp_path: Path) -> MakeProbe:
    """`make_probe(HttpProbe, url=..., timeout=...)`: validated settings (type filled in), a real context."""

    def make(cls: type[P], /, client: Any = None, **settings: Any) -> P:
        validated = cls.Settings.model_validate({**settings, "type": cls.type_name})
        ctx = ProbeContext(tmp_path, SystemClock())
        extra = {"client": client} if client is not None else {}
        return cls(validated, ctx, **extra)

    return make


def run_check(probe: Probe) -> ProbeResult:
    """One check and the probe's aclose(), in one event loop (as the daemon's shutdown would)."""

    async def go() -> ProbeResult:
        try:
            return await probe.check()
        finally:
            await probe.aclose()

    return asyncio.run(go())


# HTTP(S) ------------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What the server answers on one path: `delay` seconds late, or never (`hang`) until the server stops."""

    status: int = 200
    body: bytes | str = b"ok"
    content_type: str = "text/plain; charset=utf-8"
    delay: float = 0.0
    hang: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class HttpPeer:
    """A loopback HTTP server: `peer.reply("/health", status=503)` sets an answer and returns its URL."""

    base_url: str
    default: Reply = field(default_factory=Reply)
    routes: dict[str, Reply] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/health") -> str:
        return self.base_url + path

    def reply(self, path: str = "/health", **answer: Any) -> str:
        with self.lock:
            self.routes[path] = Reply(**answer)
        return self.url(path)

    def serve_file(self, path: str, file: Path, content_type: str = "application/json") -> str:
        return self.reply(path, body=file.read_bytes(), content_type=content_type)

    def answer_for(self, path: str) -> Reply:
        with self.lock:
            return self.routes.get(path.split("?", 1)[0], self.default)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout tests) makes the late write fail; that is expected, not news."""


def _serve(tls: ssl.SSLContext | None) -> Iterator[HttpPeer]:
    peer: HttpPeer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.command == "POST":
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with peer.lock:
                peer.requests.append(Seen(self.command, self.path, dict(self.headers)))
            reply = peer.answer_for(self.path)
            if reply.hang:
                peer.stopping.wait()
                return
            if reply.delay:
                peer.stopping.wait(reply.delay)
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = _answer  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    peer = HttpPeer(base_url=f"{scheme}://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        peer.stopping.set()  # releases hanging and delayed handlers
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def http_peer() -> Iterator[HttpPeer]:
    """A plain HTTP server on 127.0.0.1; answers 200 "ok" on every path until told otherwise."""
    yield from _serve(None)


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no client trusts (cert and key paths)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "continuity test peer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_peer(self_signed: tuple[Path, Path]) -> Iterator[HttpPeer]:
    """The HTTP server behind TLS with a self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*self_signed)
    yield from _serve(ctx)


# TCP ----------------------------------------------------------------------------------------------------------


@dataclass
class TcpPeer:
    port: int
    accepted: int = 0
    closed_by_client: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def tcp_peer() -> Iterator[TcpPeer]:
    """A listener that accepts and counts connections, and how many the client closed (EOF within 2s)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    peer = TcpPeer(server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                with peer.lock:
                    peer.accepted += 1
                conn.settimeout(2)
                try:
                    eof = conn.recv(1) == b""
                except OSError:
                    eof = False
                if eof:
                    with peer.lock:
                        peer.closed_by_client += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A port whose connection attempts hang: a listener with a full accept queue drops every new SYN."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port: int = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)  # takes the only place in the queue
    try:
        yield port
    finally:
        filler.close()
        server.close()


# DNS ----------------------------------------------------------------------------------------------------------


@dataclass
class DnsPeer:
    """A loopback DNS server: answers its records, NXDOMAIN for unknown names, NOERROR-empty for a known name
    without the asked type. `mode` "silent" drops every query, "servfail" fails every one."""

    address: str
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    mode: Literal["answer", "silent", "servfail"] = "answer"
    queries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, rtype: str, *values: str) -> None:
        self.records.setdefault((name.lower().rstrip("."), rtype), []).extend(values)

    def respond(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        rtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rtype))
        if self.mode == "silent":
            return None
        response = dns.message.make_response(query)
        if self.mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rtype) in self.records:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rtype,
                                                            self.records[(name, rtype)]))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        wire_out: bytes = response.to_wire()
        return wire_out


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, peer: DnsPeer) -> None:
        self.peer = peer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport: no isinstance check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        answer = self.peer.respond(data)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


@pytest.fixture
def dns_peer() -> Iterator[DnsPeer]:
    """An asyncio UDP DNS server on 127.0.0.1 (its own event loop in a thread), records set per test."""
    loop = asyncio.new_event_loop()
    peer = DnsPeer(address="")
    transport, _ = loop.run_until_complete(
        loop.create_datagram_endpoint(lambda: _Responder(peer), local_addr=("127.0.0.1", 0)))
    host, port = transport.get_extra_info("sockname")[:2]
    peer.address = f"{host}:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        loop.call_soon_threadsafe(transport.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(asyncio.sleep(0))  # lets the transport finish closing its socket
        loop.close()
