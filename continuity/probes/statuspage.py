"""A provider's own status page: when the telephony or chat vendor says its component is down, believe it.

Many providers publish the Atlassian Statuspage format (`/api/v2/summary.json`); no library fits, so this is
httpx plus a small pydantic model of the part of the format that matters. httpx is imported lazily.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from continuity.config.envrefs import EnvUrl
from continuity.net.http import ClientSlot
from continuity.probes.base import Probe, ProbeContext, ProbeResult, ProbeSettings, Status
from continuity.probes.http import check_http_url, url_host
from continuity.probes.tcp import describe_network_error

if TYPE_CHECKING:
    import httpx

SUMMARY_PATH = "/api/v2/summary.json"

# The remote format: lenient (extra keys ignored), since providers' pages grow fields over time.


class _Remote(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SummaryPage(_Remote):
    id: str
    name: str
    url: str | None = None
    updated_at: str | None = None


class SummaryComponent(_Remote):
    id: str
    name: str
    status: str  # not a Literal: an unknown new state must not make the whole page unreadable
    description: str | None = None
    group: bool = False
    group_id: str | None = None


class SummaryStatus(_Remote):
    indicator: str
    description: str = ""


class Summary(_Remote):
    """The parts of a Statuspage v2 summary.json this probe reads."""

    page: SummaryPage
    components: list[SummaryComponent]
    status: SummaryStatus


def summary_url(url: str) -> str:
    """The summary.json URL for a page's base URL (`https://status.example.com`), its `/api/v2`, or itself."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if path.endswith(".json"):
        return url.strip()
    path = path + "/summary.json" if path.endswith("/api/v2") else path + SUMMARY_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class StatuspageSettings(ProbeSettings):
    """Which page and which of its components."""

    url: EnvUrl = Field(description="the status page (https://status.example.com) or its /api/v2/summary.json")
    component: str = Field(min_length=1, description="the component's name as shown on the page (any case)")
    degraded_is: Literal["up", "degraded", "down"] = Field(
        default="degraded", description="what 'degraded performance' counts as here")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)


class StatuspageProbe(Probe):
    """Reads the provider's summary.json and reports the named component's state.

    operational → up; degraded performance → `degraded_is`; partial outage or maintenance → degraded;
    major outage → down. A missing component, an error page or something that is not a summary is down.
    """

    type_name = "statuspage"
    Settings = StatuspageSettings
    description = "a provider's Statuspage (summary.json) shows the component operational"

    settings: StatuspageSettings

    def __init__(self, settings: StatuspageSettings, context: ProbeContext, *,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, context)
        self._http = ClientSlot(client, timeout=self.timeout, follow_redirects=True)
        self.url = summary_url(settings.url)

    def _client(self) -> httpx.AsyncClient:
        return self._http.get()

    async def check(self) -> ProbeResult:
        import httpx

        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client().get(self.url, headers={"User-Agent": self.context.user_agent,
                                                                       "Accept": "application/json"},
                                                    timeout=self.timeout)
        except (TimeoutError, httpx.TimeoutException):
            return self.result("down", started, f"timed out after {self.timeout:g}s")
        except (httpx.HTTPError, OSError) as exc:
            return self.result("down", started, describe_network_error(exc, url_host(self.url)))
        if response.status_code != 200:
            return self.result("down", started, f"HTTP {response.status_code}")
        try:
            summary = Summary.model_validate(json.loads(response.content))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if isinstance(exc, ValidationError):
                return self.result("down", started, "not a Statuspage summary (no page/components/status)")
            return self.result("down", started, "status page answered with bad JSON")
        status, reason = judge(summary, self.settings.component, self.settings.degraded_is)
        return self.result(status, started, reason)

    async def aclose(self) -> None:
        await self._http.aclose()


# Component state → (status, words for the reason); "degraded_performance" is the configurable one.
_STATES: dict[str, tuple[Status | None, str]] = {
    "operational": ("up", ""),
    "degraded_performance": (None, "degraded performance"),
    "partial_outage": ("degraded", "partial outage"),
    "major_outage": ("down", "major outage"),
    "under_maintenance": ("degraded", "under maintenance"),
}
_RANK: dict[Status, int] = {"up": 0, "degraded": 1, "down": 2}


def judge(summary: Summary, component: str, degraded_is: Status) -> tuple[Status, str]:
    """The status and reason for one component of a summary (matched by name, ignoring case and spaces)."""
    wanted = component.strip().casefold()
    matches = [c for c in summary.components if c.name.strip().casefold() == wanted]
    if not matches:
        names = [c.name for c in summary.components]
        shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        return "down", f"no component {component!r} on {summary.page.name} (available: {shown or 'none'})"
    # The same name twice (in two groups) is judged by the worse of the two.
    judged: list[tuple[Status, str]] = []
    for comp in matches:
        status, words = _STATES.get(comp.status, ("degraded", f"unknown state {comp.status!r}"))
        judged.append((degraded_is if status is None else status, f"{comp.name}: {words}" if words else ""))
    return max(judged, key=lambda item: _RANK[item[0]])
