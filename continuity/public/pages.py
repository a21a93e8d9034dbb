"""The rendered /status page kept, with its ETag, until something it shows can have changed.

With 90 days of uptime the page is 40–67 KB; rendering it and hashing it for the ETag at every visitor's
poll (each open page asks every minute) cost more than the figures themselves. What the page shows depends
on: the locale; the ledger (`Store.ledger_mark()`: a new situation, step or event, so an outage opened, an
update, an ETA, a close); the daemon's health states; the minute (the page says "last updated" to the
minute, today's downtime counts in whole minutes); and instants at which an open situation changes on the
page without the ledger moving (a maintenance window starting, a campaign's launch). A repeated request with
the same of all these costs a ledger-mark query and a dictionary lookup.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from continuity.public.status import public_since

if TYPE_CHECKING:
    from continuity.store.protocol import Store
    from continuity.store.records import SituationRecord

_KEPT = 32  # locales × minutes × health states seen lately; cleared when full


@dataclass(frozen=True)
class Page:
    body: bytes
    etag: str
    headers: tuple[tuple[str, str], ...]


def turning_points(situations: list[SituationRecord]) -> tuple[datetime, ...]:
    """When the open situations change on the page by the clock alone: a campaign's launch (its surge shows
    from then), a maintenance window's start (the channel turns to maintenance)."""
    out = []
    for sit in situations:
        out.append(public_since(sit))
        window = sit.data.get("maintenance") if sit.data else None
        if isinstance(window, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                out.append(datetime.fromisoformat(window["starts_at"]))
    return tuple(sorted(out))


class PageCache:
    """Rendered pages by (locale, ledger mark, health states, minute, turning points passed)."""

    def __init__(self) -> None:
        self._pages: dict[tuple[Any, ...], Page] = {}
        self._points: tuple[tuple[int, int, int], tuple[datetime, ...]] | None = None
        self._lock = threading.Lock()
        self.renders = 0

    def key(self, store: Store, locale: str, health: Mapping[str, str | None], now: datetime) -> tuple[Any, ...]:
        """Read the ledger mark before the page's data is read: a change in between renders again next time."""
        mark = store.ledger_mark()
        kept = self._points
        if kept is None or kept[0] != mark:
            kept = (mark, turning_points(store.open_situations()))
            self._points = kept
        passed = sum(1 for t in kept[1] if t <= now)
        return (locale, mark, tuple(sorted(health.items())), now.replace(second=0, microsecond=0), passed)

    def get(self, key: tuple[Any, ...], render: Callable[[], tuple[bytes, dict[str, str]]]) -> Page:
        """The page kept under `key`, else `render()`'s (body, headers), kept with its ETag. A render that
        raises is not kept."""
        with self._lock:
            hit = self._pages.get(key)
        if hit is not None:
            return hit
        body, headers = render()
        page = Page(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"', tuple(headers.items()))
        with self._lock:
            self.renders += 1
            if len(self._pages) >= _KEPT:
                self._pages.clear()
            self._pages[key] = page
        return page
