"""Is the phone system answering? One SIP OPTIONS request (RFC 3261 section 11), the "ping" of SIP.

No maintained Python SIP library sends an OPTIONS ping, and the exchange is small: a hand-written request over
UDP (retransmitted like a non-INVITE client transaction, RFC 3261 17.1.2) or TCP, and a parser that reads the
status line and the headers needed to match the answer to the request (Via branch, Call-ID, CSeq).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from continuity.net.reason import network_reason, scrub, seconds
from continuity.probes.base import Probe, ProbeResult, ProbeSettings

T1 = 0.5  # RFC 3261 round-trip estimate: the first retransmission interval
T2 = 4.0  # the longest interval between retransmissions of a non-INVITE request
TIMER_F = 64 * T1  # a non-INVITE transaction gives up after this, whatever the probe's timeout
MAX_MESSAGE = 65536

# Compact header forms (RFC 3261 7.3.3) of the headers this probe reads.
_COMPACT = {"v": "via", "i": "call-id", "l": "content-length", "f": "from", "t": "to", "m": "contact"}
_STATUS_LINE = re.compile(r"^SIP/2\.0\s+(\d{3})\s*(.*)$")
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)
_USER = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=-]+$")


class SipOptionsSettings(ProbeSettings):
    """Where the PBX or SIP trunk listens, and which final answers count as "up"."""

    type: Literal["sip_options"] = "sip_options"
    host: str = Field(min_length=1, pattern=r"^[^\s;<>\"]+$")
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"
    uri: str | None = Field(default=None, description="Request-URI (default sip:HOST:PORT)")
    up_codes: list[int] = Field(
        default_factory=list,
        description="final answers that also count as up besides 2xx (some PBXs answer OPTIONS 404, 405 or 481)",
    )
    from_user: str = "continuity"

    @field_validator("uri")
    @classmethod
    def _sip_uri(cls, value: str | None) -> str | None:
        if value is not None and (not re.match(r"^sips?:\S+$", value) or "<" in value or ">" in value):
            raise ValueError("uri must be a SIP URI like sip:pbx.example.com:5060 (no spaces or angle brackets)")
        return value

    @field_validator("up_codes")
    @classmethod
    def _final_codes(cls, value: list[int]) -> list[int]:
        for code in value:
            if not 200 <= code <= 699:
                raise ValueError(f"{code} is not a final SIP status code (200-699)")
        return value

    @field_validator("from_user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _USER.match(value):
            raise ValueError("from_user must be a plain SIP user name (letters, digits, . _ - and the like)")
        return value


@dataclass(frozen=True)
class SipResponse:
    """A parsed SIP response: status and headers (names lower-cased, compact forms expanded)."""

    code: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def status_line(self) -> str:
        return f"SIP {self.code} {self.reason}".rstrip()

    @property
    def branch(self) -> str | None:
        """The branch of the topmost Via: the transaction this answers."""
        via = self.header("via")
        if via is None:
            return None
        m = _BRANCH.search(via.split(",", 1)[0])
        return m.group(1) if m else None

    @property
    def content_length(self) -> int:
        try:
            return max(0, int(self.header("content-length") or 0))
        except ValueError:
            return 0


def parse_response(data: bytes) -> SipResponse | None:
    """The status line and headers of a SIP response; None for a request or anything unreadable."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.lstrip("\r\n").split("\r\n")
    m = _STATUS_LINE.match(lines[0])
    if m is None:
        return None
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last is not None:
            headers[last][-1] += " " + line.strip()  # a folded continuation line
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return SipResponse(int(m.group(1)), m.group(2).strip(), headers)


def _host_part(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class OptionsRequest:
    """One OPTIONS request with fresh identifiers, ready to send from `local` (ip, port)."""

    uri: str
    transport: Literal["udp", "tcp"]
    local: tuple[str, int]
    from_user: str
    user_agent: str = "continuity"  # the probe's vantage in it: `continuity/VERSION (vantage office)`
    branch: str = field(default_factory=lambda: "z9hG4bK" + secrets.token_hex(10))
    call_id: str = field(default_factory=lambda: secrets.token_hex(16))
    tag: str = field(default_factory=lambda: secrets.token_hex(6))

    def encode(self) -> bytes:
        host = _host_part(self.local[0])
        lines = [
            f"OPTIONS {self.uri} SIP/2.0",
            # rport (RFC 3581): answer to the port this came from, so the probe works from behind NAT.
            f"Via: SIP/2.0/{self.transport.upper()} {host}:{self.local[1]};branch={self.branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.from_user}@{host}>;tag={self.tag}",
            f"To: <{self.uri}>",
            f"Call-ID: {self.call_id}@{host}",
            "CSeq: 1 OPTIONS",
            f"Contact: <sip:{self.from_user}@{host}:{self.local[1]};transport={self.transport}>",
            "Accept: application/sdp",
            f"User-Agent: {self.user_agent}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def answered_by(self, response: SipResponse) -> bool:
        """Is this response to this request (and not a stray or a late answer to an earlier probe)?"""
        call_id = (response.header("call-id") or "").split("@", 1)[0]
        cseq = (response.header("cseq") or "").split()
        return response.branch == self.branch and call_id == self.call_id and cseq[-1:] == ["OPTIONS"]


class NotSip(Exception):
    """The peer answered with something that is not a SIP response."""


class _UdpClient(asyncio.DatagramProtocol):
    """Collects the answer to one request; provisional (1xx) answers only mark the transaction proceeding."""

    def __init__(self) -> None:
        self.request: OptionsRequest | None = None
        self.final: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self.proceeding = False

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        response = parse_response(data)
        if response is None or self.request is None or not self.request.answered_by(response):
            return
        if response.code < 200:
            self.proceeding = True
        elif not self.final.done():
            self.final.set_result(response)

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket an ICMP port-unreachable comes back as ConnectionRefusedError.
        if not self.final.done():
            self.final.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.final.done():
            self.final.set_exception(exc or ConnectionError("socket closed"))


class SipOptionsProbe(Probe):
    """Sends SIP OPTIONS to a PBX or trunk; a 2xx (or a configured code) is up, anything else down."""

    type_name = "sip_options"
    Settings = SipOptionsSettings
    description = "the PBX or SIP trunk answers an OPTIONS request"

    settings: SipOptionsSettings

    def request_uri(self) -> str:
        s = self.settings
        if s.uri is not None:
            return s.uri
        suffix = ";transport=tcp" if s.transport == "tcp" else ""
        return f"sip:{_host_part(s.host)}:{s.port}{suffix}"

    def judge(self, response: SipResponse, started: float) -> ProbeResult:
        if 200 <= response.code < 300 or response.code in self.settings.up_codes:
            return self.result("up", started)
        return self.result("down", started, scrub(response.status_line))

    async def check(self) -> ProbeResult:
        started = time.perf_counter()
        limit = min(self.timeout, TIMER_F)
        attempts = [0]  # requests sent so far, counted by _udp for the timeout reason
        try:
            async with asyncio.timeout(limit):
                if self.settings.transport == "udp":
                    response = await self._udp(attempts)
                else:
                    response = await self._tcp()
        except ConnectionRefusedError:
            what = "port unreachable" if self.settings.transport == "udp" else "connection refused"
            return self.result("down", started, what)
        except TimeoutError:
            reason = f"timed out after {seconds(limit)}"
            if attempts[0]:
                reason += f" (no answer to {attempts[0]} OPTIONS)"
            return self.result("down", started, reason)
        except asyncio.IncompleteReadError:
            return self.result("down", started, "connection closed by the server before it answered")
        except asyncio.LimitOverrunError:
            return self.result("down", started, "answer too large to be SIP")
        except NotSip as exc:
            return self.result("down", started, str(exc))
        except OSError as exc:
            return self.result("down", started, network_reason(exc, limit))
        return self.judge(response, started)

    async def _udp(self, attempts: list[int]) -> SipResponse:
        s = self.settings
        loop = asyncio.get_running_loop()
        # A connected socket: only the PBX's datagrams arrive, and ICMP errors are reported to us.
        transport, client = await loop.create_datagram_endpoint(_UdpClient, remote_addr=(s.host, s.port))
        try:
            local = transport.get_extra_info("sockname")
            request = OptionsRequest(self.request_uri(), "udp", (str(local[0]), int(local[1])), s.from_user,
                                     self.context.user_agent)
            client.request = request
            data = request.encode()
            interval = T1
            while True:
                transport.sendto(data)
                attempts[0] += 1
                done, _ = await asyncio.wait({client.final}, timeout=interval)
                if done:
                    return client.final.result()
                # Timer E: doubling up to T2; once a 1xx came, the request is repeated every T2.
                interval = T2 if client.proceeding else min(interval * 2, T2)
        finally:
            if client.final.done():
                if not client.final.cancelled():
                    client.final.exception()  # retrieved, so asyncio does not log it as never retrieved
            else:
                client.final.cancel()  # nobody waits any more; connection_lost must not set an error
            transport.close()

    async def _tcp(self) -> SipResponse:
        s = self.settings
        reader, writer = await asyncio.open_connection(s.host, s.port, limit=MAX_MESSAGE)
        try:
            local = writer.get_extra_info("sockname")
            request = OptionsRequest(self.request_uri(), "tcp", (str(local[0]), int(local[1])), s.from_user,
                                     self.context.user_agent)
            writer.write(request.encode())
            await writer.drain()
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.strip():
                    continue  # keep-alive CRLFs (RFC 5626)
                response = parse_response(head)
                if response is None:
                    raise NotSip("the server did not answer in SIP")
                if response.content_length:
                    await reader.readexactly(response.content_length)
                if request.answered_by(response) and response.code >= 200:
                    return response
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
