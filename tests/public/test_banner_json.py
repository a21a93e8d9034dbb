"""/banner.json and /banner.js: the banners the ledger says are on, in every locale, as the file_banner sink
received them; conditional GETs and CORS as configured."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from continuity.campaigns import phases
from tests.campaigns.kit import write
from tests.conftest import NOW, tick
from tests.public.conftest import SHOP_ORIGIN, MakeSite

BANNER_FILE = Path("site/banner/continuity-banner.json")


def doc_of(answer: Any) -> dict[str, Any]:
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    data: dict[str, Any] = json.loads(answer.body)
    return data


def test_calm_day_has_no_banner(site: MakeSite) -> None:
    s = site()
    doc = doc_of(s.get("/banner.json"))
    assert doc == {"active": False, "default_locale": "hu", "locales": ["hu", "en", "sk", "pl"],
                   "poll_seconds": 30, "banners": []}


def test_banner_follows_the_ledger_and_matches_the_banner_file(site: MakeSite, workdir: Path) -> None:
    s = site()
    s.engine.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="tester")
    # Planned but not yet run: nothing is on, so nothing shows.
    assert doc_of(s.get("/banner.json"))["banners"] == []
    s.run()

    doc = doc_of(s.get("/banner.json"))
    assert doc["active"] is True
    (banner,) = doc["banners"]
    on_disk = json.loads((workdir / BANNER_FILE).read_text(encoding="utf-8"))["banners"]["1"]
    assert banner["locales"] == on_disk["locales"]  # the same words as the file_banner sink wrote
    assert set(banner["locales"]) == {"hu", "en", "sk", "pl"}
    assert banner["locales"]["hu"]["title"] == "Átmenetileg nem érhető el a telefonos ügyfélszolgálat"
    assert "help@shop.example.test" in banner["locales"]["en"]["body"]
    assert (banner["id"], banner["channel"], banner["situation_kind"]) == ("1", "phone", "outage")
    assert banner["updated_at"] == NOW.isoformat()
    assert "key" not in banner and "step_id" not in banner  # ledger internals stay inside
    first_revision = banner["revision"]

    # Asked again later: the text is what the step showed, not re-rendered with a moving clock.
    s.engine.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    assert doc_of(s.get("/banner.json"))["banners"][0]["revision"] == first_revision

    # A new ETA refreshes the banner: a new revision, so a visitor who closed it sees it again.
    s.engine.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=4), by="tester")
    s.run()
    (updated,) = doc_of(s.get("/banner.json"))["banners"]
    assert updated["revision"] != first_revision
    assert updated["locales"] == json.loads((workdir / BANNER_FILE).read_text())["banners"]["1"]["locales"]

    s.engine.close("phone", by="tester")
    assert doc_of(s.get("/banner.json"))["banners"] == []  # closed: gone at once, before the undo ran
    s.run()
    assert doc_of(s.get("/banner.json"))["active"] is False
    assert not (workdir / BANNER_FILE).exists()


def test_each_open_situation_has_its_own_banner(site: MakeSite) -> None:
    s = site(lambda cfg: cfg["channels"]["email"].update(override={"website-banner": {"after": "0s"}}))
    s.engine.open("phone", reason="trunk down", by="tester")
    s.engine.open("email", reason="mail provider down", by="tester")
    s.run()
    banners = doc_of(s.get("/banner.json"))["banners"]
    assert [(b["id"], b["channel"]) for b in banners] == [("1", "phone"), ("2", "email")]
    s.engine.close("phone", by="tester")
    s.run()
    assert [b["channel"] for b in doc_of(s.get("/banner.json"))["banners"]] == ["email"]


def test_campaign_banner_has_its_faq_link_but_not_its_internal_name(site: MakeSite, workdir: Path) -> None:
    s = site()
    run = phases.register(s.engine, write(workdir), by="marketing").run
    for moment in (run.opens_at, run.starts_at):  # the briefing opens the surge, the launch shows the banner
        s.engine.clock.set(moment)  # type: ignore[attr-defined]
        tick(s.engine)
    answer = s.get("/banner.json")
    (banner,) = doc_of(answer)["banners"]
    assert (banner["situation_kind"], banner["channel"]) == ("surge", None)  # not "campaign:winter-sale"
    assert "https://shop.example.test/winter/faq" in banner["locales"]["hu"]["body"]
    assert "Winter Sale" in banner["locales"]["en"]["title"]
    assert "campaign:" not in answer.text and "winter-sale" not in answer.text


def test_unchanged_answer_is_a_304(site: MakeSite) -> None:
    s = site()
    first = s.get("/banner.json")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = s.get("/banner.json", {"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    s.engine.open("phone", reason="trunk down", by="tester")
    s.run()
    changed = s.get("/banner.json", {"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["etag"] != etag


def test_banner_json_is_readable_from_any_shop_by_default(site: MakeSite) -> None:
    """banner.json is public, read-only data: the shop (another origin) reads it without any config;
    /status.json stays same-origin unless configured."""
    s = site()
    answer = s.get("/banner.json", {"Origin": SHOP_ORIGIN})
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    preflight = s.get("/banner.json", {"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "GET"},
                      method="OPTIONS")
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in s.get("/status.json", {"Origin": SHOP_ORIGIN}).headers


def test_cors_allows_the_listed_origins_only(site: MakeSite) -> None:
    s = site(lambda cfg: cfg["daemon"].setdefault("public", {}).update(cors_origins=[SHOP_ORIGIN]))
    allowed = s.get("/banner.json", {"Origin": SHOP_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert "Origin" in allowed.headers["vary"]
    other = s.get("/banner.json", {"Origin": "https://evil.example.test"})
    assert "access-control-allow-origin" not in other.headers
    assert s.get("/status.json", {"Origin": SHOP_ORIGIN}).headers["access-control-allow-origin"] == SHOP_ORIGIN
    preflight = s.get("/banner.json", {"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "GET"},
                      method="OPTIONS")
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert "GET" in preflight.headers["access-control-allow-methods"]


def test_cors_star_must_be_explicit(site: MakeSite) -> None:
    s = site(lambda cfg: cfg["daemon"].setdefault("public", {}).update(cors_origins=["*"]))
    assert s.get("/banner.json", {"Origin": "https://anyone.example.test"}).headers[
        "access-control-allow-origin"] == "*"


def test_banner_js_is_small_dependency_free_and_never_parses_wire_html(site: MakeSite) -> None:
    s = site()
    answer = s.get("/banner.js")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "max-age" in answer.headers["cache-control"]
    script = answer.text
    assert len(answer.body) < 10_000  # small: a shop loads it on every page
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "import "):
        assert forbidden not in script
    assert 'role", "status"' in script and 'aria-live", "polite"' in script and "localStorage" in script


def test_public_routes_change_nothing(site: MakeSite, workdir: Path) -> None:
    s = site()
    s.engine.open("phone", reason="trunk down", by="tester")
    s.run()
    before = (s.engine.store.conn.execute("SELECT COUNT(*), MAX(id) FROM steps").fetchone()[0],
              s.engine.store.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    for path in ("/banner.json", "/banner.js", "/status", "/status.json", "/voice.xml"):
        assert s.get(path).status == 200, path
    assert s.get("/voice.xml", method="POST").status == 200
    assert s.get("/status", method="POST").status == 405
    after = (s.engine.store.conn.execute("SELECT COUNT(*), MAX(id) FROM steps").fetchone()[0],
             s.engine.store.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    assert before == after
    assert s.get("/healthz").status in (200, 503)  # the old routes are still there
    assert s.get("/metrics").status == 200
    assert s.get("/api/tick", method="POST").status == 403  # and still refuse without a token
