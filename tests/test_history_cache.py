"""The status page's per-day uptime cache (continuity.public.uptime) gives history.uptime's figures, to the
second, whatever the ledger did since the last look: outages opened, updated and closed, one still open,
maintenance, a late declaration of a past day, a new day beginning."""

from __future__ import annotations

from datetime import timedelta

from continuity.history import uptime
from continuity.public.uptime import UptimeCache
from tests.conftest import MakeEngine
from tests.test_history import local

TZ = "Europe/Budapest"
CHANNELS = ["phone", "email", "chat"]


def test_cached_figures_are_history_uptime_figures(engine: MakeEngine) -> None:
    eng = engine(start=local("2026-11-10T10:00"))
    cache = UptimeCache()

    def same() -> None:
        now = eng.clock.now()
        assert cache.uptime(eng.store, CHANNELS, TZ, now) == uptime(eng.store, CHANNELS, TZ, now)

    same()
    eng.open("phone", reason="down", by="t")
    for minutes in (1, 29, 30):
        eng.clock.advance(timedelta(minutes=minutes))  # type: ignore[attr-defined]
        same()  # the open outage grows with the clock, the cache untouched
    misses = cache.misses
    eng.close("phone", by="t")
    same()
    assert cache.misses == misses + 1  # the close moved the ledger mark
    eng.clock.set(local("2026-11-10T23:30"))  # type: ignore[attr-defined]
    eng.open("email", reason="night", by="t")
    eng.clock.set(local("2026-11-11T00:45"))  # type: ignore[attr-defined]
    same()  # a new day: yesterday is counted from the cache's kept situations up to midnight
    eng.close("email", by="t")
    eng.clock.set(local("2026-11-12T08:00"))  # type: ignore[attr-defined]
    same()
    email = cache.uptime(eng.store, CHANNELS, TZ, eng.clock.now())["email"]
    days = {d["date"]: d["down_seconds"] for d in email["days"]}
    assert (days["2026-11-10"], days["2026-11-11"]) == (1800, 2700)
