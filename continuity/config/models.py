"""The configuration and playbook schema, validated strictly: unknown keys are errors, typos never pass."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from continuity.actions import ACTIONS
from continuity.durations import format_duration, parse_duration

LOCALES = ("en", "hu", "sk", "pl")


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration like 30s, 15m, 2h or 1d")


# What parse_duration accepts, for editors: units in any case, spaces anywhere, a bare integer is seconds
# (a bare number in quotes is not). Not pydantic's ISO 8601 "PT30S", which the loader refuses.
DURATION_JSON_SCHEMA: JsonSchemaValue = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*([0-9][0-9 ]*\s*[smhdwSMHDW] *)+\s*$"},
        {"type": "integer", "minimum": 0},
    ],
    "description": "a duration: 30s, 15m, 2h, 1d, 1w or combined (1h30m); a bare number is seconds",
}

Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(DURATION_JSON_SCHEMA, mode="validation"),
]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", min_length=1, max_length=64)]
Locale = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]


def _at_least_1s(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError("every must be at least 1s")
    return value


# How often something repeats (a step, a health check): under a second would busy-loop the daemon.
Every = Annotated[Duration, AfterValidator(_at_least_1s)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(Strict):
    """Who the customers are talking to, and how to speak to them."""

    name: str = Field(min_length=1)
    default_locale: Locale = "en"
    locales: list[Locale] = Field(default_factory=lambda: ["en"], min_length=1)
    staff_locale: Locale | None = None
    timezone: str = "UTC"
    website: str | None = None
    status_url: str | None = None
    # How English dates read: en-GB "5 December 2026, 18:36" (the default for a European shop) or en-US
    # "December 5, 2026, 6:36 PM". A locale written `en-US` in `locales` is American whatever this says.
    english: Literal["en-GB", "en-US"] = "en-GB"
    # Prepared causes customers read (`outage --cause KEY`): key -> locale -> sentence; adds to or rewords
    # the shipped catalog (continuity.variables.CAUSES).
    causes: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name like Europe/Budapest") from None
        return value

    @model_validator(mode="after")
    def _default_served(self) -> Organisation:
        if self.default_locale not in self.locales:
            raise ValueError(f"default_locale {self.default_locale!r} must be one of locales {self.locales}")
        for key, texts in self.causes.items():  # every customer reads a cause in their own language
            missing = [loc for loc in self.locales if not (texts.get(loc) or texts.get(loc.split("-")[0]))]
            if missing:
                raise ValueError(f"causes: {key!r} has no text in {', '.join(missing)}")
        return self

    @property
    def staff_lang(self) -> str:
        return self.staff_locale or self.default_locale


class Fallback(Strict):
    """Where customers go instead, and the extra wait there; `- email` is short for `- channel: email`."""

    channel: Name
    extra_wait: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"channel": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler, /
    ) -> JsonSchemaValue:
        # The schema must admit the shorthand too, or editors flag `fallbacks: [email]` that the loader takes.
        mapping = handler(core_schema)
        name = dict(handler.resolve_ref_schema(mapping)["properties"]["channel"])
        name.pop("title", None)
        return {"anyOf": [name, mapping]}


class StepOverride(Strict):
    """Change one step of a shipped playbook for one channel without copying the file."""

    after: Duration | None = None
    every: Duration | None = None
    to: str | None = None
    template: str | None = None
    disabled: bool = False


class StepSpec(Strict):
    """One action at one time: `after` the situation opened, optionally repeated `every`."""

    id: Name
    action: str
    to: str
    template: str
    after: Duration = timedelta(0)
    every: Every | None = None
    only_if: Name | None = None
    # A campaign's surge runs some steps at a moment of the campaign rather than `after` the opening:
    # `launch` (its start) or `reminder` (the morning before launch); `after` is then added to that moment.
    at: Literal["launch", "reminder"] | None = None

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        if value not in ACTIONS:
            raise ValueError(f"unknown action {value!r}; expected one of: {', '.join(ACTIONS)}")
        return value

    @property
    def reversible(self) -> bool:
        return ACTIONS[self.action].reversible

    @property
    def audience(self) -> str:
        return ACTIONS[self.action].audience


class ProbeSpec(BaseModel):
    """One probe of a channel: `type` picks the settings model (checked after this pass)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    # Where the probe runs from: daemon nodes and `continuity agent`s by their vantage name (default: the
    # daemon's own vantage). Kept out of the type's settings: it says where, not what.
    vantages: list[Name] | None = Field(default=None, min_length=1)

    @field_validator("vantages")
    @classmethod
    def _heard_here(cls, value: list[str] | None, info: Any) -> list[str] | None:
        if value is not None and info.data.get("type") == "heartbeat":
            raise ValueError("a heartbeat probe is heard by the daemon and takes no vantages; name the silent "
                             "one in `vantage:`")
        return value

    def settings_data(self) -> dict[str, Any]:
        return {"type": self.type, **(self.model_extra or {})}


class Flapping(Strict):
    """A channel that changes state `changes` times within `window` is held down and staff are told."""

    changes: int = Field(default=4, ge=2)
    window: Duration = timedelta(minutes=10)


class Health(Strict):
    """How the daemon decides a channel is down or back: its probes, how often, and the hysteresis."""

    probes: list[ProbeSpec] = Field(min_length=1)
    every: Every = timedelta(seconds=30)
    combine: Literal["all", "any"] = "all"
    fail_after: int = Field(default=3, ge=1)
    recover_after: int = Field(default=2, ge=1)
    flapping: Flapping = Flapping()
    close_manual: bool = False
    # How many vantages must see the channel down (each after its own fail_after) before it is down: one
    # site's own network trouble is not the customers' outage.
    quorum: int = Field(default=1, ge=1)
    degraded_playbook: str | None = Field(
        default=None, description="a playbook of kind `degraded` run while the channel is slow or partly "
        "working (none: degraded is only logged and exported as a metric)")


class Surge(Strict):
    """When the daemon declares an unplanned surge on a channel: `volume` probes read how much work waits
    (unseen mail, a help-desk queue); `after` readings in a row above the threshold open the surge playbook,
    `clear_after` readings in a row at or under it close it again."""

    probes: list[ProbeSpec] = Field(min_length=1)
    threshold: float | None = Field(default=None, ge=0, description="for probes that do not set their own")
    every: Every = timedelta(seconds=60)
    combine: Literal["any", "all"] = Field(
        default="any", description="any: one probe above its threshold is a surge; all: every probe must be")
    after: int = Field(default=3, ge=1)
    clear_after: int = Field(default=5, ge=1)
    playbook: Name = "surge-unplanned"


class Channel(Strict):
    """A way customers reach the team, where they go instead when it fails, and which playbook runs."""

    contact: str | None = None
    display: dict[Locale, str] = Field(default_factory=dict)
    fallbacks: list[Fallback] = Field(default_factory=list)
    playbook: Name | None = None
    override: dict[str, StepOverride] = Field(default_factory=dict)
    add_steps: list[StepSpec] = Field(default_factory=list)
    add_on_close: list[StepSpec] = Field(default_factory=list)
    health: Health | None = None
    surge: Surge | None = None


class StoreConfig(Strict):
    url: str = "sqlite:///continuity.db"
    # How long a command waits for a store another process holds (a backup, a stuck command) before it gives
    # up with exit 75 and nothing recorded. It says so on stderr as soon as it starts waiting.
    busy_timeout: Duration = Field(default=timedelta(seconds=30),
                                   description="how long to wait for a store another process holds (exit 75 after)")

    @field_validator("url", mode="before")  # before: a value from ${...} still knows how it was written
    @classmethod
    def _supported(cls, value: Any) -> Any:
        # Checked here so `validate` catches it with file and line; only the scheme is named (a database URL
        # may carry a password).
        if not isinstance(value, str):
            return value
        if value.startswith(("postgresql://", "postgres://")):
            import importlib.util

            from continuity.config.envrefs import FromEnv, has_ref

            written = (value.source if isinstance(value, FromEnv) else value) or ""  # "": all of it from a ref
            authority = written.split("://", 1)[-1].split("/", 1)[0]
            userinfo = authority.rpartition("@")[0]
            query = written.partition("?")[2].lower()
            if (":" in userinfo and not has_ref(userinfo.split(":", 1)[1])) or (
                    "password=" in query and not has_ref(query.split("password=", 1)[1].split("&")[0])):
                raise ValueError("the URL embeds a password: write it as ${ENV_VAR} "
                                 "(postgresql://continuity:${PGPASSWORD}@db:5432/continuity), or leave it out "
                                 "and let libpq read PGPASSWORD or PGPASSFILE")
            if importlib.util.find_spec("psycopg") is None:
                raise ValueError("a postgresql:// store needs psycopg, which is not installed: "
                                 "pip install 'continuity[postgres]'")
            return value
        if not value.startswith("sqlite:///"):
            scheme = value.split(":", 1)[0] if ":" in value else value[:20]
            raise ValueError(f"unsupported store URL scheme {scheme!r}; use sqlite:///path/to/continuity.db "
                             "(relative paths are relative to this file) or postgresql://USER@HOST:PORT/DB")
        return value


class SinkSpec(BaseModel):
    """A named sink instance: its `type` picks the settings model, checked after this pass."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str

    def settings_data(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RetryPolicy(Strict):
    """How failing sinks are retried: exponential backoff from `first_delay`, at most `attempts` tries."""

    attempts: int = Field(default=6, ge=1, le=100)
    first_delay: Duration = timedelta(seconds=2)
    max_delay: Duration = timedelta(minutes=15)
    inline_budget: Duration = timedelta(seconds=10)


class Paths(Strict):
    playbooks: list[str] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list)
    outbox: str = "outbox"


class PublicWeb(Strict):
    """What the daemon shows the public, read-only: /banner.json + /banner.js, /status, /voice.xml."""

    # Web pages on other origins that may read /banner.json and /status.json ("*" for any); none: same origin.
    cors_origins: list[str] = Field(default_factory=list)
    banner_poll: Duration = timedelta(seconds=30)
    # How long after restore a banner that was shown says "working again" (outage/banner-resolved) before it
    # goes; 0 switches the resolved state off.
    banner_resolved_for: Duration = timedelta(minutes=30)
    # The customer channels on the status page and in the phone announcement; default: those with a contact.
    channels: list[Name] | None = None
    # The languages of /voice.xml, in order; default: the organisation's default locale, then the others.
    voice_locales: list[Locale] | None = None
    # The provider's text-to-speech voice per language (TwiML `voice`, e.g. Google.hu-HU-Standard-A): the
    # provider's default voice speaks only a few languages.
    voice_names: dict[Locale, Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")]] = Field(default_factory=dict)
    # Where the call goes after the announcement (a TwiML <Redirect>); none: the document just ends.
    voice_next_url: str | None = Field(default=None, pattern=r"^https?://\S+$")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        import re

        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
                raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port] without a path "
                                 "(https://shop.example.test), or \"*\" for any page")
        return value

    @field_validator("banner_poll")
    @classmethod
    def _min_poll(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=5):
            raise ValueError("banner_poll must be at least 5s (every visitor's browser asks this often)")
        return value

    @field_validator("banner_resolved_for")
    @classmethod
    def _resolved_for(cls, value: timedelta) -> timedelta:
        if value < timedelta(0) or value > timedelta(days=1):
            raise ValueError("banner_resolved_for must be between 0 (off) and 1d")
        return value


class ConsoleWeb(Strict):
    """The operator console at /console/ (users from `continuity user add`)."""

    enabled: bool = True
    # A bind of its own (e.g. 127.0.0.1:8081, only reachable over the VPN) while the daemon's bind serves
    # the public status page; default: the daemon's bind.
    bind: str | None = Field(default=None, pattern=r"^\[?[0-9A-Za-z.:_-]*\]?:\d{1,5}$")
    # A session ends this long after sign-in, used or not: a phone left in a taxi stops being a way in.
    session_ttl: Duration = timedelta(hours=12)

    @field_validator("session_ttl")
    @classmethod
    def _min_ttl(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("session_ttl must be at least 1s")
        return value


class Daemon(Strict):
    """The daemon's small HTTP endpoint (/healthz, /metrics, and token-protected actions)."""

    bind: str = Field(default="127.0.0.1:8765", pattern=r"^\[?[0-9A-Za-z.:_-]*\]?:\d{1,5}$")
    token_env: str = Field(default="CONTINUITY_API_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    public: PublicWeb = PublicWeb()
    console: ConsoleWeb = ConsoleWeb()
    # This daemon's name in a cluster (`continuity daemon --node` overrides it; default: the host name).
    node: Name | None = None
    # Where this daemon sees the channels from; probes without `vantages` run here (default: the node name).
    vantage: Name | None = None

    @property
    def node_name(self) -> str:
        """This node's name: the configured one, else the host name made into a name."""
        if self.node:
            return self.node
        import re
        import socket

        name = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
        return (name or "local")[:64]

    @property
    def vantage_name(self) -> str:
        """This node's vantage: the configured one, else its node name."""
        return self.vantage or self.node_name


class ClusterConfig(Strict):
    """Several daemons on one PostgreSQL store: one leads, the others stand by and take over."""

    # A leader that has not renewed its lease for this long (a paused VM, a wedged process) is taken for
    # dead: another node ends its database session and leads. A killed leader is replaced within a second.
    failover: Duration = timedelta(seconds=10)

    @field_validator("failover")
    @classmethod
    def _min_failover(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=2):
            raise ValueError("failover must be at least 2s (the leader renews its lease every second)")
        return value


class Campaigns(Strict):
    """Registered campaigns: how early staff must be briefed, and when the launch-day reminder goes out."""

    min_lead: Duration = timedelta(hours=48)
    morning_hour: int = Field(default=9, ge=0, le=23)
    # Staff are briefed at this time of day (organisation time), on the last day that still gives them the
    # campaign's full lead: a midnight launch is not briefed at midnight.
    brief_at: time = time(9, 0)

    @field_validator("brief_at", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 10:30 as the number 630 (base 60): minutes since midnight.
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 24 or value >= 24 * 60:
                raise ValueError("write a time of day, e.g. \"09:00\"")
            return time(value // 60, value % 60)
        return value


class Config(Strict):
    """The whole configuration file (see playbooks.example.yaml)."""

    organisation: Organisation
    store: StoreConfig = StoreConfig()
    channels: dict[Name, Channel] = Field(min_length=1)
    sinks: dict[Name, SinkSpec] = Field(default_factory=dict)
    routes: dict[Name, list[Name]] = Field(default_factory=dict)
    paths: Paths = Paths()
    retry: RetryPolicy = RetryPolicy()
    daemon: Daemon = Daemon()
    cluster: ClusterConfig = ClusterConfig()
    campaigns: Campaigns = Campaigns()


class Playbook(Strict):
    """The steps for one kind of situation (a shipped or user YAML file under playbooks/)."""

    name: Name
    kind: Literal["outage", "surge", "maintenance", "degraded", "monitoring"]
    title: str
    description: str = ""
    plan_b: str | None = None
    steps: list[StepSpec] = Field(default_factory=list)
    on_update: list[StepSpec] = Field(default_factory=list)
    on_close: list[StepSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Playbook:
        seen: set[str] = set()
        for group in (self.steps, self.on_update, self.on_close):
            for step in group:
                if step.id in seen:
                    raise ValueError(f"step id {step.id!r} is used twice")
                seen.add(step.id)
        return self

    def all_steps(self) -> list[tuple[str, StepSpec]]:
        return [
            *(("open", s) for s in self.steps),
            *(("update", s) for s in self.on_update),
            *(("close", s) for s in self.on_close),
        ]
