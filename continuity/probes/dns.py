"""DNS check: does a name still resolve (and to what we expect)? A lapsed domain or a broken MX record takes
e-mail and the website down while every server is fine.

dnspython is imported only when a probe is built or runs: config validation imports this module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from continuity.probes.base import Probe, ProbeContext, ProbeResult, ProbeSettings

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.resolver

Record = Literal["A", "AAAA", "MX", "CNAME", "TXT", "NS"]


def parse_resolver(value: str) -> tuple[str, int]:
    """`192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:5353` → (address, port)."""
    text = value.strip()
    host, port = text, 53
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad resolver {value!r}; expected IP, IP:PORT or [IPv6]:PORT")
        if rest:
            port = _port(rest[1:], value)
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        host, _, raw = text.partition(":")
        port = _port(raw, value)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"resolver must be an IP address (optionally with :port), not {value!r}") from None
    return host, port


def _port(raw: str, value: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"bad port in resolver {value!r}")
    return int(raw)


def _norm_name(text: str) -> str:
    return text.strip().lower().rstrip(".")


def _norm_value(text: str) -> str:
    """One spelling per value, so `2001:DB8::1` matches `2001:db8:0::1` and `Mail.Example.com.` its lowercase."""
    text = text.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return _norm_name(text)


class DnsSettings(ProbeSettings):
    """The name and record type to look up, where, and what the answer must contain."""

    query: str = Field(min_length=1, max_length=253)
    record: Record = "A"
    resolver: str | None = Field(default=None, description="IP or IP:port; default: the system resolver")
    expect: list[str] = Field(default_factory=list)

    @field_validator("query")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() for c in value) or "/" in value or ".." in value:
            raise ValueError(f"{value!r} is not a domain name")
        return value

    @field_validator("record", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("resolver")
    @classmethod
    def _resolver(cls, value: str | None) -> str | None:
        if value is not None:
            parse_resolver(value)
        return value

    @model_validator(mode="after")
    def _expect_fits_record(self) -> DnsSettings:
        version = {"A": 4, "AAAA": 6}.get(self.record)
        for item in self.expect if version else ():
            try:
                ok = ipaddress.ip_address(item.strip()).version == version
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"expect {item!r} is not an IPv{version} address, as an {self.record} answer is")
        return self


class DnsProbe(Probe):
    """Up when the query is answered and the answer holds every `expect` value; NXDOMAIN, an empty answer,
    a failing server or a timeout is down."""

    type_name = "dns"
    Settings = DnsSettings
    description = "a DNS name resolves (to the expected values)"

    settings: DnsSettings

    def __init__(self, settings: DnsSettings, context: ProbeContext) -> None:
        super().__init__(settings, context)
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get_resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            import dns.asyncresolver

            if self.settings.resolver is None:
                resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
            else:
                resolver = dns.asyncresolver.Resolver(configure=False)
                address, port = parse_resolver(self.settings.resolver)
                resolver.nameservers = [address]
                resolver.port = port
            # One budget for the whole lookup, retries included; no cache, so every check really asks.
            resolver.timeout = resolver.lifetime = self.timeout
            resolver.cache = None
            self._resolver = resolver
        return self._resolver

    async def check(self) -> ProbeResult:
        import dns.exception
        import dns.resolver

        query, record = self.settings.query, self.settings.record
        started = time.perf_counter()
        try:
            resolver = self._get_resolver()
            async with asyncio.timeout(self.timeout + 0.5):  # a guard: dnspython's lifetime should fire first
                answer = await resolver.resolve(query, record, lifetime=self.timeout, search=False)
        except dns.resolver.NoResolverConfiguration:
            return self.result("down", started, "no system resolver configured (/etc/resolv.conf)")
        except dns.resolver.NXDOMAIN:
            return self.result("down", started, f"NXDOMAIN: {query} does not exist")
        except dns.resolver.NoAnswer:
            return self.result("down", started, f"no {record} record for {query}")
        except (TimeoutError, dns.exception.Timeout):
            return self.result("down", started, f"timed out after {self.timeout:g}s")
        except dns.resolver.NoNameservers as exc:
            return self.result("down", started, f"no server answered: {_server_errors(exc)}")
        except (dns.exception.DNSException, OSError) as exc:
            return self.result("down", started, f"lookup failed: {exc}")

        if self.settings.expect:
            got = _answer_values(answer, record)
            missing = [e for e in self.settings.expect if _norm_value(e) not in got]
            if missing:
                shown = ", ".join(sorted(a.to_text() for a in answer)[:5]) or "nothing"
                return self.result("down", started, f"answer lacks {', '.join(missing)} (got {shown})")
        return self.result("up", started)


def _answer_values(answer: dns.resolver.Answer, record: str) -> set[str]:
    """Every spelling an expectation may use for the answer's records (normalised)."""
    values: set[str] = set()
    for rdata in answer:
        values.add(_norm_value(rdata.to_text()))
        if record == "MX":
            values.add(_norm_name(rdata.exchange.to_text()))
        elif record == "TXT":
            values.add(b"".join(rdata.strings).decode("utf-8", errors="replace").strip().lower())
    return values


def _server_errors(exc: dns.resolver.NoNameservers) -> str:
    """`Do53:192.0.2.53@53 answered SERVFAIL`, short (the format dnspython uses, trimmed)."""
    errors = exc.kwargs.get("errors") or []
    text = "; ".join(f"{err[0]} answered {err[3]}" for err in errors[:3]) or "all servers failed"
    return text if len(text) <= 200 else text[:197] + "..."
