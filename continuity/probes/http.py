"""HTTP(S) check: one request, judged by its status code, optionally its body and how long it took.

httpx is imported only when a probe is built or runs: config validation imports this module for its
Settings, and the CLI must start fast.
"""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from continuity.config.envrefs import EnvHeaders, EnvUrl, Secret
from continuity.config.models import Duration
from continuity.net.http import ClientSlot
from continuity.probes.base import Probe, ProbeContext, ProbeResult, ProbeSettings
from continuity.probes.tcp import describe_network_error

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    import httpx

# Body checks look at the first MiB: a health page is never bigger, and a runaway one must not eat memory.
MAX_BODY = 1 << 20


def format_seconds(value: float) -> str:
    """`2.3s`, `0.31s`: enough digits to compare a latency with its limit."""
    return f"{value:.1f}s" if value >= 1 else f"{value:.2f}s"


def url_host(url: str) -> str | None:
    """The host part of a URL, for error reasons (never the user info or the query, which may hold secrets)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def check_http_url(value: str) -> str:
    """Validate an http(s) URL with a host; shared by the probes that fetch one."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise ValueError(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    return value


class HttpSettings(ProbeSettings):
    """What to request and what counts as healthy."""

    url: EnvUrl
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    contains: str | None = Field(default=None, min_length=1)
    regex: str | None = Field(default=None, min_length=1)
    max_latency: Duration | None = None
    verify_tls: bool = True
    follow_redirects: bool = False
    headers: EnvHeaders = Field(default_factory=dict)
    bearer_token: Secret | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"not HTTP status codes: {bad}; expected numbers from 100 to 599")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return value

    @field_validator("max_latency")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if value is not None and value.total_seconds() <= 0:
            raise ValueError("max_latency must be more than 0s")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HttpSettings:
        if self.method == "HEAD" and (self.contains or self.regex):
            raise ValueError("a HEAD response has no body: drop contains/regex or use GET")
        if self.bearer_token is not None and any(k.lower() == "authorization" for k in self.headers):
            raise ValueError("give either bearer_token or an Authorization header, not both")
        return self


class HttpProbe(Probe):
    """Up when the status is expected and the body checks pass; degraded when only the latency is too high.

    Pass `client` to share one connection pool among many probes (its owner closes it); without one the
    probe makes its own on first use and closes it in `aclose()`.
    """

    type_name = "http"
    Settings = HttpSettings
    description = "an HTTP(S) request answers with an expected status (and body) in time"

    settings: HttpSettings

    def __init__(self, settings: HttpSettings, context: ProbeContext, *,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, context)
        # httpx verifies TLS per client, not per request: a probe told not to verify cannot use a shared,
        # verifying client, so it makes its own.
        self._http = ClientSlot(client if settings.verify_tls else None, verify=settings.verify_tls,
                                timeout=self.timeout)
        self._regex = re.compile(settings.regex) if settings.regex else None
        self._read_body = settings.method != "HEAD"
        # The vantage in the User-Agent (a `headers: {User-Agent: ...}` of the probe's own wins).
        headers = {"User-Agent": context.user_agent, **settings.headers}
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        self._headers = headers
        self._max_latency = settings.max_latency.total_seconds() if settings.max_latency else None

    def _client(self) -> httpx.AsyncClient:
        return self._http.get()

    async def check(self) -> ProbeResult:
        import httpx

        started = time.perf_counter()
        try:
            # httpx's timeout bounds each phase (connect, each read); this bounds the whole exchange.
            async with asyncio.timeout(self.timeout):
                status, body, charset = await self._fetch()
        except (TimeoutError, httpx.TimeoutException):
            return self.result("down", started, f"timed out after {self.timeout:g}s")
        except (httpx.HTTPError, OSError) as exc:
            return self.result("down", started, describe_network_error(exc, url_host(self.settings.url)))
        latency = time.perf_counter() - started

        if status not in self.settings.expect_status:
            return self.result("down", started, f"HTTP {status}")
        if self.settings.contains is not None or self._regex is not None:
            text = _decode(body, charset)
            if self.settings.contains is not None and self.settings.contains not in text:
                return self.result("down", started, f"body does not contain {self.settings.contains!r}")
            if self._regex is not None and not self._regex.search(text):
                return self.result("down", started, f"body does not match {self._regex.pattern!r}")
        if self._max_latency is not None and latency > self._max_latency:
            return self.result("degraded", started,
                               f"slow: {format_seconds(latency)} > {self._max_latency:g}s")
        return self.result("up", started)

    async def _fetch(self) -> tuple[int, bytes, str | None]:
        """Status, the first MAX_BODY bytes of the body, and its declared charset."""
        client = self._client()
        request = client.build_request(self.settings.method, self.settings.url, headers=self._headers,
                                       timeout=self.timeout)
        response = await client.send(request, stream=True, follow_redirects=self.settings.follow_redirects)
        try:
            chunks: list[bytes] = []
            if self._read_body:
                # Reading to the end lets the connection go back to the pool for the next cycle.
                size = 0
                # aiter_bytes is an async generator (typed as an iterator): close it when stopping early.
                async with aclosing(cast("AsyncGenerator[bytes, None]", response.aiter_bytes())) as stream:
                    async for chunk in stream:
                        chunks.append(chunk)
                        size += len(chunk)
                        if size >= MAX_BODY:
                            break
            return response.status_code, b"".join(chunks)[:MAX_BODY], response.charset_encoding
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")
