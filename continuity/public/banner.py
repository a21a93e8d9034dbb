"""The website banners in effect right now, read from the ledger.

A banner is on while its situation is open and a `banner` step of it is done and not yet undone: the same
rule `continuity status` uses for "switched on". Each is rendered exactly as the file_banner sink received it
(the runner's own Action, with the clock pinned to the moment the step ran) and shaped by file_banner's
`banner_entry`, so the JSON file on disk and /banner.json say the same words. The ledger, not the file, is the
source: the daemon may not share a disk with the web server, and a site may route banners to a webhook only.

After restore, an outage whose banner had been shown keeps a last, "resolved" state (outage/banner-resolved:
working again, how long it lasted) for `daemon.public.banner_resolved_for`, in the document's `resolved` list:
a customer who saw "phone down" learns it is back instead of the banner just vanishing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from continuity.clock import Clock, SystemClock
from continuity.config.loader import LoadedConfig
from continuity.engine import CAMPAIGN_SCOPE, Engine
from continuity.errors import ContinuityError
from continuity.sinks.file_banner import banner_entry
from continuity.store.records import SituationRecord, StepRecord
from continuity.store.sqlite import SqliteStore
from continuity.variables import template_context
from continuity.views import switched_on

_CACHE_LIMIT = 256
RESOLVED_TEMPLATE = "outage/banner-resolved"


def banner_row(rows: list[StepRecord]) -> StepRecord | None:
    """The banner currently shown for one situation: the latest applied `banner` row still switched on."""
    on = [r for r in switched_on(rows) if r.action == "banner"]
    return max(on, key=lambda r: (r.started_at or r.due_at, r.id), default=None)


def banner_shown(rows: list[StepRecord]) -> bool:
    """Whether a `banner` step of the situation went on (done, or done and since switched off by the close)."""
    return any(r.action == "banner" and r.phase in ("open", "update") and r.state in ("done", "undone")
               for r in rows)


def revision(locales: dict[str, Any]) -> str:
    """Changes whenever any wording changes: a visitor who dismissed one text sees the next one."""
    return hashlib.sha256(json.dumps(locales, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


class BannerSource:
    """Builds the /banner.json document; renders each banner once and keeps it until its inputs change."""

    def __init__(self, loaded: LoadedConfig, store: SqliteStore, clock: Clock | None = None) -> None:
        self.loaded = loaded
        self.store = store
        self.clock = clock or SystemClock()  # decides when a resolved state is over
        # Rendering happens "as of" the moment each step ran: the engine replays it (Engine.action_as_ran).
        self.engine = Engine(loaded, store, SystemClock())
        self.errors: list[str] = []
        self._cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._resolved: dict[tuple[Any, ...], dict[str, Any] | None] = {}

    def banners(self) -> list[dict[str, Any]]:
        out = []
        self.errors = []
        for sit in self.store.open_situations():
            row = banner_row(self.store.steps_for(sit.id))
            if row is None:
                continue
            key = (row.id, sit.revision, sit.reason, sit.eta, sit.note, json.dumps(sit.data, sort_keys=True))
            entry = self._cache.get(key)
            if entry is None:
                try:
                    entry = self._render(sit, row)
                except ContinuityError as exc:  # a template broken since the step ran: skip, report in the log
                    self.errors.append(f"banner of situation {sit.id}: {exc}")
                    continue
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = entry
            out.append(entry)
        return out

    def resolved(self) -> list[dict[str, Any]]:
        """The "working again" last state of each outage closed within `banner_resolved_for` whose banner was
        shown; rendered once per close (as of the close, so its revision stays put)."""
        period = self.loaded.config.daemon.public.banner_resolved_for
        if not period:
            return []
        now = self.clock.now()
        out = []
        for sit in self.store.situations_since(now - period):
            closed = sit.closed_at
            if sit.kind != "outage" or sit.state != "closed" or closed is None or not now - period < closed <= now:
                continue
            key = (sit.id, closed, period)
            if key not in self._resolved:
                if len(self._resolved) >= _CACHE_LIMIT:
                    self._resolved.clear()
                try:
                    self._resolved[key] = (self._render_resolved(sit, closed, closed + period)
                                           if banner_shown(self.store.steps_for(sit.id)) else None)
                except ContinuityError as exc:  # the site removed or broke the template: no last state
                    self.errors.append(f"resolved banner of situation {sit.id}: {exc}")
                    continue
            entry = self._resolved[key]
            if entry is not None:
                out.append(entry)
        return out

    def _render_resolved(self, sit: SituationRecord, closed: datetime, until: datetime) -> dict[str, Any]:
        playbook = self.loaded.playbooks.get(sit.playbook)
        locales: dict[str, Any] = {}
        for locale in self.engine.catalog.locales_for("customers"):
            text = self.engine.catalog.render(RESOLVED_TEMPLATE, locale,
                                              template_context(self.loaded, sit, playbook, locale, closed))
            locales[text.locale] = {"title": text.title, "body": text.body}
        return {
            "id": str(sit.id),
            "state": "resolved",
            "revision": revision(locales),
            "situation_kind": sit.kind,
            "channel": sit.channel,
            "updated_at": closed.isoformat(),
            "until": until.isoformat(),
            "default_locale": self.loaded.config.organisation.default_locale,
            "locales": locales,
        }

    def _render(self, sit: SituationRecord, row: StepRecord) -> dict[str, Any]:
        when = row.started_at or row.due_at
        entry = banner_entry(self.engine.action_as_ran(row), when)
        locales: dict[str, Any] = entry["locales"]
        # The public shape: no ledger keys or step ids (they name sinks and playbook internals), and no
        # campaign scope key (`campaign:<name>` is the staff's name; customers read the campaign's title).
        channel = entry["channel"]
        if str(channel).startswith(CAMPAIGN_SCOPE) or sit.channel.startswith(CAMPAIGN_SCOPE):
            channel = None
        return {
            "id": str(sit.id),
            "revision": revision(locales),
            "situation_kind": sit.kind,
            "channel": channel,
            "updated_at": entry["updated_at"],
            "default_locale": entry["default_locale"],
            "locales": locales,
        }

    def document(self) -> dict[str, Any]:
        """The whole /banner.json: no timestamp of its own, so an unchanged answer keeps its ETag."""
        org = self.loaded.config.organisation
        banners = self.banners()
        doc: dict[str, Any] = {
            "active": bool(banners),
            "default_locale": org.default_locale,
            "locales": list(org.locales),
            "poll_seconds": int(self.loaded.config.daemon.public.banner_poll.total_seconds()),
            "banners": banners,
        }
        resolved = self.resolved()  # after banners(): its errors add to theirs
        if resolved:  # only while there is one: `active` stays about banners that are on
            doc["resolved"] = resolved
        return doc
