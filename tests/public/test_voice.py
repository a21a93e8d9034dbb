"""/voice.xml (TwiML for a telephony provider) and the voice_text sink (text files for a PBX): the same
announcement, in the right languages, escaped, and gone after restore."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.public.conftest import EVIL, MakeSite, Site

ANNOUNCE_DIR = Path("pbx")


def says(s: Site, method: str = "GET") -> list[tuple[str, str]]:
    answer = s.get("/voice.xml", method=method)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(answer.body)  # well-formed XML or this raises
    assert root.tag == "Response"
    return [(el.get("language") or "", el.text or "") for el in root if el.tag == "Say"]


def with_pbx(cfg: dict[str, Any], **settings: Any) -> None:
    cfg["sinks"]["pbx"] = {"type": "voice_text", "directory": str(ANNOUNCE_DIR), **settings}
    cfg["routes"]["announcement"] = ["pbx"]


def test_nothing_open_is_an_empty_response(site: MakeSite) -> None:
    s = site()
    answer = s.get("/voice.xml")
    assert answer.text == '<?xml version="1.0" encoding="UTF-8"?>\n<Response/>\n'


def test_redirect_to_the_usual_call_flow_when_configured(site: MakeSite) -> None:
    s = site(lambda cfg: cfg["daemon"].setdefault("public", {}).update(
        voice_next_url="https://pbx.example.test/twiml?queue=1&x=2"))
    assert ET.fromstring(s.get("/voice.xml").body)[0].text == "https://pbx.example.test/twiml?queue=1&x=2"
    s.engine.open("phone", reason="trunk down", by="tester")
    root = ET.fromstring(s.get("/voice.xml").body)
    assert [el.tag for el in root][-1] == "Redirect"
    assert "queue=1&amp;x=2" in s.get("/voice.xml").text


def test_phone_outage_in_every_language_default_first(site: MakeSite) -> None:
    s = site()
    s.engine.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="tester")
    spoken = says(s)
    assert [lang for lang, _ in spoken] == ["hu-HU", "en-GB", "sk-SK", "pl-PL"]
    hu, en = spoken[0][1], spoken[1][1]
    assert hu.startswith("Technikai hiba miatt a telefonos ügyfélszolgálat átmenetileg nem érhető el.")
    assert "help@shop.example.test" in en and "https://" not in en  # URLs are not read out
    assert "\n" not in en and "  " not in en
    assert says(s, method="POST") == spoken  # providers POST by default; it reads all the same
    s.engine.close("phone", by="tester")
    assert says(s) == []


def test_chosen_languages_voices_and_several_situations(site: MakeSite) -> None:
    s = site(lambda cfg: cfg["daemon"].setdefault("public", {}).update(
        voice_locales=["en", "hu"], voice_names={"hu": "Google.hu-HU-Standard-A"}))
    s.engine.open("email", reason="mail provider down", by="tester")
    s.engine.open("phone", reason="trunk down", by="tester")
    spoken = says(s)
    assert [lang for lang, _ in spoken] == ["en-GB", "en-GB", "hu-HU", "hu-HU"]
    assert "phone line" in spoken[0][1] and "email" in spoken[1][1]  # the phone's own outage first
    voices = [el.get("voice") for el in ET.fromstring(s.get("/voice.xml").body) if el.tag == "Say"]
    assert voices == [None, None, "Google.hu-HU-Standard-A", "Google.hu-HU-Standard-A"]


def test_text_is_escaped(site: MakeSite) -> None:
    s = site(lambda cfg: cfg["channels"]["email"].update(contact=EVIL))
    s.engine.open("phone", reason=EVIL, by="tester")
    text = s.get("/voice.xml").text
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text
    assert any("<img src=x onerror=\"alert('x')\"> & \"quoted\"" in said for _, said in says(s))


def test_voice_text_sink_writes_and_removes_the_announcement(site: MakeSite, workdir: Path) -> None:
    s = site(with_pbx)
    s.engine.open("phone", reason="trunk down", eta=timedelta(hours=2), by="tester")
    s.run()
    folder = workdir / ANNOUNCE_DIR
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert files == sorted(f"continuity-announcement{x}.txt" for x in ("", ".en", ".hu", ".pl", ".sk"))
    spoken = dict(says(s))
    assert (folder / "continuity-announcement.hu.txt").read_text() == spoken["hu-HU"] + "\n"
    assert (folder / "continuity-announcement.txt").read_text() == spoken["hu-HU"] + "\n"  # the first language
    assert (folder / "continuity-announcement.pl.txt").read_text() == spoken["pl-PL"] + "\n"

    # A new ETA re-applies the announcement, like the banner.
    s.engine.open("phone", reason="trunk down", eta=timedelta(hours=5), by="tester")
    s.run()
    assert (folder / "continuity-announcement.en.txt").read_text() == dict(says(s))["en-GB"] + "\n"

    s.engine.close("phone", by="tester")
    s.run()
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == []
    row = s.engine.store.conn.execute(
        "SELECT state FROM steps WHERE step_id = 'phone-announcement' AND phase = 'undo'").fetchone()
    assert row[0] == "done"


def test_voice_text_sink_can_leave_empty_files(site: MakeSite, workdir: Path) -> None:
    s = site(lambda cfg: with_pbx(cfg, when_idle="empty"))
    s.engine.open("phone", reason="trunk down", by="tester")
    s.run()
    s.engine.close("phone", by="tester")
    s.run()
    folder = workdir / ANNOUNCE_DIR
    assert {p.name: p.read_text() for p in folder.iterdir() if not p.name.startswith(".")} == {
        f"continuity-announcement{x}.txt": "" for x in ("", ".en", ".hu", ".pl", ".sk")}


def test_without_a_pbx_route_the_step_plans_nothing(site: MakeSite, workdir: Path) -> None:
    s = site()
    s.engine.open("phone", reason="trunk down", by="tester")
    s.run()
    rows = s.engine.store.conn.execute("SELECT COUNT(*) FROM steps WHERE step_id = 'phone-announcement'")
    assert rows.fetchone()[0] == 0
    assert says(s)  # /voice.xml announces all the same
