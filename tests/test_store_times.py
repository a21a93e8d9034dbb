"""The store's fast time text (isoformat, fromisoformat) is the same text and the same instant as the
strftime/strptime it replaced: string order is time order, whatever time zone a datetime came in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from continuity.store.times import from_ts, required_ts, ts

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def test_ts_and_from_ts_agree_with_strftime_and_strptime() -> None:
    rng = random.Random(18)
    base = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    samples = [base, base.replace(microsecond=1), datetime(1000, 1, 1, tzinfo=UTC),
               datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    for _ in range(2000):
        when = base + timedelta(seconds=rng.uniform(-3e9, 3e9))
        samples.append(when.astimezone(timezone(timedelta(minutes=rng.randrange(-720, 721, 15)))))
    for when in samples:
        text = ts(when)
        assert text == when.astimezone(UTC).strftime(FORMAT)
        back = from_ts(text)
        assert back == when == datetime.strptime(text, FORMAT).replace(tzinfo=UTC)
        assert back is not None and back.utcoffset() == timedelta(0)
    ordered = sorted(samples)
    assert sorted(ts(w) or "" for w in samples) == [ts(w) for w in ordered]


def test_from_ts_reads_none_and_refuses_other_text() -> None:
    assert ts(None) is None and from_ts(None) is None
    assert required_ts("2026-11-23T09:00:00.000000Z") == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    for bad in ("2026-11-23 09:00:00", "2026-11-23T09:00:00.000000+01:00", "yesterday"):
        try:
            from_ts(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was read")
