"""A campaign on the public pages: its surge opens at the staff briefing, but /status, /status.json and
/voice.xml stay quiet until the launch; after it they name the campaign by its public title, never by its
scope key, and never show the staff's reason (the dates and the load forecast). It reads as high demand since
the launch, never as an outage since the briefing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from continuity.campaigns import phases
from continuity.variables import human_datetime
from tests.campaigns.kit import write
from tests.conftest import tick
from tests.public.conftest import MakeSite, Site

START = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # the kit's winter sale: 08:00 in Budapest
BRIEF = START - timedelta(hours=48)
TITLES = {"en": "Winter Sale", "hu": "Téli akció", "sk": "Zimný výpredaj", "pl": "Zimowa wyprzedaż"}
INTERNAL = ("campaign:", "winter-sale", "expected load", "2x", "2026-12-01 08:00")
SURGE_TEXT = {"en": "We are receiving far more messages than usual; answers may take longer.",
              "hu": "A szokásosnál jóval több üzenetet kapunk, ezért a válaszunk tovább tarthat.",
              "sk": "Dostávame oveľa viac správ ako zvyčajne, preto môžu odpovede trvať dlhšie.",
              "pl": "Otrzymujemy znacznie więcej wiadomości niż zwykle, dlatego odpowiedź może potrwać dłużej."}
# Outage wording a campaign must never get, in every language.
PROBLEM = ("problem", "hib", "problém")


def briefing(lang: str, tz: str) -> tuple[str, ...]:
    """The briefing date as the pages render dates: ISO in status.json and <time>, localised text beside it."""
    return (BRIEF.isoformat(), BRIEF.date().isoformat(), human_datetime(BRIEF, lang, tz))


def at(s: Site, when: datetime) -> None:
    s.engine.clock.set(when)  # type: ignore[attr-defined]
    tick(s.engine)


def status(s: Site, lang: str = "en") -> dict[str, Any]:
    answer = s.get(f"/status.json?lang={lang}")
    assert answer.status == 200
    data: dict[str, Any] = json.loads(answer.body)
    return data


def page(s: Site, lang: str = "en") -> str:
    answer = s.get(f"/status?lang={lang}")
    assert answer.status == 200
    return answer.text


def says(s: Site) -> list[str]:
    answer = s.get("/voice.xml")
    assert answer.status == 200
    return [el.text or "" for el in ET.fromstring(answer.body) if el.tag == "Say"]


def registered(site: MakeSite, workdir: Path) -> Site:
    s = site()
    title = "title:\n" + "".join(f"  {loc}: {text}\n" for loc, text in TITLES.items())
    phases.register(s.engine, write(workdir, **{"title: Winter Sale\n": title}), by="marketing")
    return s


def test_quiet_between_briefing_and_launch(site: MakeSite, workdir: Path) -> None:
    s = registered(site, workdir)
    at(s, BRIEF + timedelta(hours=12))
    [sit] = s.engine.store.open_situations()
    assert (sit.kind, sit.channel, sit.source) == ("surge", "campaign:winter-sale", "campaign")  # staff know

    data = status(s)
    assert data["overall"] == "up" and data["situations"] == []
    assert data["history_from"] is None  # nothing customers may know of yet: no history begins
    assert all(c["status"] == "up" for c in data["channels"])
    html = page(s)
    assert "Current notices" not in html and "Winter Sale" not in html
    for text in INTERNAL:
        assert text not in html and text not in json.dumps(data), text
    assert says(s) == []

    at(s, START - timedelta(seconds=1))
    assert status(s)["situations"] == [] and says(s) == []


def test_shown_after_launch_by_title_without_the_internal_reason(site: MakeSite, workdir: Path) -> None:
    s = registered(site, workdir)
    at(s, BRIEF)
    at(s, START)

    tz = s.daemon.loaded.config.organisation.timezone
    for lang, title in TITLES.items():
        data = status(s, lang)
        assert data["overall"] == "busy"
        [shown] = data["situations"]
        assert shown["kind"] == "surge" and shown["channel_name"] == title
        assert shown["channel"] is None and shown["reason"] is None
        # Since the launch, not the briefing that opened the situation 48 hours earlier.
        assert shown["opened_at"] == START.isoformat()
        assert shown["opened_at_text"] == human_datetime(START, lang, tz)
        assert shown["updates"] == []  # the briefing and all before the launch are internal
        assert data["history_from"] == START.isoformat()  # the page's history begins at the launch
        html = page(s, lang)
        assert title in html and SURGE_TEXT[lang] in html and shown["opened_at_text"] in html
        notice = html[html.index("<article>"):html.index("</article>")].lower()
        assert not any(word in notice for word in PROBLEM), (lang, notice)
        # Every date of the last 90 days is a cell of a channel's uptime (with no situation on it here);
        # the briefing's date must show nowhere else.
        assert all(not d["situations"] for c in data["channels"] for d in c["uptime"]["days"])
        bare = {**data, "channels": [{k: v for k, v in c.items() if k != "uptime"} for c in data["channels"]]}
        for text in INTERNAL + briefing(lang, tz):
            assert text not in json.dumps(bare, ensure_ascii=False) and text not in html, (lang, text)

    spoken = says(s)
    assert len(spoken) == 4  # one per served language
    assert any("far more enquiries than usual" in t for t in spoken)
    assert not any(text in t for t in spoken for text in INTERNAL)


def test_people_reasons_shown_daemon_reasons_not(site: MakeSite) -> None:
    s = site()
    s.engine.open("phone", reason="Our phone provider has a fault", by="tester",  # source cli: a person typed it
                  data={"public_reason": True, "reason_locale": "en"})  # ... and published it, in English
    s.engine.open("email", reason="smtp: connection refused 10.0.0.5:25", by="daemon", source="daemon")
    s.engine.open("chat", reason="drill: chat down", by="drill", source="drill")
    reasons = {sit["channel"]: sit["reason"] for sit in status(s)["situations"]}
    assert reasons.get("phone") == "Our phone provider has a fault"
    assert "email" in reasons and reasons["email"] is None
    assert reasons.get("chat") is None  # a drill's reason is not for customers either
