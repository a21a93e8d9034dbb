"""What customers read, hear and use (issue 15), through the real CLI and a real daemon on loopback.

The staff's own words (`--reason`) never reach customers unless published, and then only in their language;
customers read a prepared cause in theirs. Dates have month names and a 24-hour clock (never a US short date,
a raw ISO time or the word None); the voice reads no numeric date; an ETA in the past is refused.
"""

from __future__ import annotations

import email
import json
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from continuity.config.loader import load_config
from continuity.preview import _variants, every_playbook
from continuity.templating import TemplateCatalog
from continuity.variables import CAUSES, human_datetime, human_when, template_context
from tests.conftest import EXAMPLE_CONFIG, MakeEngine, run_cli
from tests.crashkit import free_port
from tests.daemon.test_daemon_e2e import DaemonProc

HU_REASON = "A szolgáltatónál leállt a SIP trönk"
HU_WORDS = ("szolgáltatónál", "leállt", "trönk")
# What no text may carry: a US short date (12/5/26), a raw ISO date-time, the word None.
US_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b")
ISO_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
NONE = re.compile(r"\bNone\b")
# A date read out as digits: 2026. 12. 05., 5. 12. 2026, 05.12.2026, 2026-12-05.
NUMERIC_DATE = re.compile(r"\b\d{1,4}\s?[./-]\s?\d{1,2}\s?[./-]\s?\d{1,4}\b")
TZ = "Europe/Budapest"


def customer_texts(outbox: Path) -> dict[str, str]:
    """Each customer message in the outbox (notice, auto-reply), as text, by file name."""
    out = {}
    for path in sorted(outbox.glob("*.eml")):
        if "staff" in path.name:
            continue
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        parts = [p.get_content() for p in msg.walk() if p.get_content_type() == "text/plain"]
        out[path.name] = str(msg["Subject"]) + "\n" + "\n".join(parts)
    return out


def clean(text: str, where: str) -> None:
    for name, pattern in (("a US short date", US_DATE), ("a raw ISO time", ISO_TIME), ("None", NONE)):
        found = pattern.search(text)
        assert found is None, f"{where} has {name}: {found.group(0)!r} in {text[:400]!r}"


def get(url: str) -> tuple[int, dict[str, str], str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode("utf-8")


def daemon_config(workdir: Path, port: int) -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    edits = [('    contact: "+36 1 234 5678"\n', '    contact: "+36 1 234 5678"\n'
                                                 '    override:\n      website-banner: {after: 0s}\n'),
             ("  bind: 127.0.0.1:8765\n", f"  bind: 127.0.0.1:{port}\n")]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_hungarian_reason_stays_with_staff_everywhere_customers_look(tmp_path: Path) -> None:
    """The issue's "done when": a Hungarian --reason with --cause provider on the shipped config."""
    port = free_port()
    config = daemon_config(tmp_path, port)
    daemon = DaemonProc(config, port)
    daemon.start()
    try:
        # The shipped config has no probes: the daemon says so plainly when it starts.
        assert "nothing is watched: add `health` to a channel" in daemon.log_text()
        opened = run_cli(tmp_path, "outage", "phone", "--reason", HU_REASON, "--cause", "provider", "--eta", "2h")
        assert opened.returncode == 0, opened.stdout + opened.stderr
        texts = customer_texts(tmp_path / "outbox")
        assert len(texts) >= 2  # the notice and the auto-reply
        for name, text in texts.items():
            for word in HU_WORDS:
                assert word not in text, (name, word)
            clean(text, name)
        autoreply = next(t for n, t in texts.items() if "autoreply" in n)
        for locale in ("hu", "en", "sk", "pl"):
            assert CAUSES["provider"][locale] in autoreply, locale
        # The staff still read their own words.
        staff = next((tmp_path / "outbox").glob("*staff-runbook*.eml")).read_bytes().decode("utf-8", "replace")
        assert "SIP" in staff

        base = f"http://127.0.0.1:{port}"
        for lang in ("hu", "en", "sk", "pl"):
            _, _, html = get(f"{base}/status?lang={lang}")
            _, _, data = get(f"{base}/status.json?lang={lang}")
            for word in HU_WORDS:
                assert word not in html and word not in data, (lang, word)
            assert CAUSES["provider"][lang] in json.loads(data)["situations"][0]["cause"]
            visible = re.sub(r"<[^>]+>", " ", html)
            clean(visible, f"/status?lang={lang}")
            assert 'href="tel:+3612345678"' in html and 'href="mailto:help@shop.example.test"' in html
            assert 'http-equiv="refresh"' not in html
        _, headers, banner = get(f"{base}/banner.json")
        assert headers["access-control-allow-origin"] == "*"  # the shop on another origin may read it
        assert not any(word in banner for word in HU_WORDS)
        for shown in json.loads(banner)["banners"]:
            for lang, words in shown["locales"].items():
                clean(words["title"] + "\n" + words["body"], f"/banner.json [{lang}]")
        _, _, voice = get(f"{base}/voice.xml")
        assert not any(word in voice for word in HU_WORDS)
        spoken = " ".join(re.findall(r"<Say[^>]*>(.*?)</Say>", voice, re.S))
        assert spoken
        assert NUMERIC_DATE.search(spoken) is None, spoken
        clean(spoken, "/voice.xml")
        import xml.etree.ElementTree as ET

        ET.fromstring(voice)  # still valid XML

        # Restore: the customers who were told hear it is over, in their language; the banner is gone.
        closed = run_cli(tmp_path, "restore", "phone")
        assert closed.returncode == 0, closed.stdout + closed.stderr
        restored = _restored(tmp_path / "outbox")
        assert [m["locale"] for m in restored] == ["hu", "en", "sk", "pl"]
        for m in restored:
            assert not any(word in m["subject"] + m["body"] for word in HU_WORDS), m
            clean(m["subject"] + "\n" + m["body"], f"customer-restored [{m['locale']}]")
        _, _, after = get(f"{base}/banner.json")
        assert json.loads(after)["banners"] == []
    finally:
        daemon.stop()


def test_a_published_reason_shows_only_in_its_own_language(tmp_path: Path) -> None:
    (tmp_path / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    opened = run_cli(tmp_path, "outage", "phone", "--reason", HU_REASON, "--cause", "provider",
                     "--public-reason", "--reason-locale", "hu", "--eta", "2h")
    assert opened.returncode == 0, opened.stdout + opened.stderr
    autoreply = next(t for n, t in customer_texts(tmp_path / "outbox").items() if "autoreply" in n)
    assert autoreply.count(HU_REASON) == 1  # the Hungarian part only
    hu, _, rest = autoreply.partition("Dear Customer")
    assert HU_REASON in hu and HU_REASON not in rest


@pytest.mark.parametrize(("args", "field", "words"), [
    (["--cause", "aliens"], "--cause", "unknown cause"),
    (["--public-reason", "--reason-locale", "de"], "--reason-locale", "not one of organisation.locales"),
    (["--eta", "2026-01-01T10:00"], "--eta", "is in the past"),
    (["--eta", "-30m"], "--eta", ""),
])
def test_bad_customer_fields_and_past_etas_are_refused_and_change_nothing(tmp_path: Path, args: list[str],
                                                                         field: str, words: str) -> None:
    (tmp_path / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    done = run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", *args,
                   now="2026-12-05T16:00:00+00:00")
    assert done.returncode == 2, done.stdout + done.stderr
    assert field in done.stderr and words in done.stderr
    assert not (tmp_path / "outbox").exists() and not (tmp_path / "continuity.db").exists()


def test_a_bare_time_already_passed_is_not_silently_tomorrow(tmp_path: Path) -> None:
    (tmp_path / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    now = "2026-12-05T14:00:00+00:00"  # 15:00 in Budapest
    refused = run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", "--eta", "14:30", now=now)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--eta '14:30' has passed today" in refused.stderr
    assert "--eta 2026-12-06T14:30" in refused.stderr  # what to type for tomorrow
    assert not (tmp_path / "continuity.db").exists()
    later_today = run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", "--eta", "16:30", now=now)
    assert later_today.returncode == 0, later_today.stdout + later_today.stderr
    assert "2026-12-05 16:30" in later_today.stdout


def test_the_reason_help_says_who_reads_it(tmp_path: Path) -> None:
    shown = run_cli(tmp_path, "outage", "--help", env={"COLUMNS": "200"})
    text = re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", shown.stdout))
    assert "for STAFF" in text and "customers never read it unless --public-reason" in text
    assert "--cause" in text and "What CUSTOMERS read" in text


@pytest.mark.parametrize(("locale", "at", "today", "tomorrow", "later"), [
    ("en", "5 December 2026, 18:36", "18:36 today", "10:00 tomorrow", "25 December, 10:00"),
    ("en-US", "December 5, 2026, 6:36 PM", "6:36 PM today", "10:00 AM tomorrow", "December 25, 10:00 AM"),
    ("hu", "2026. december 5. 18:36", "ma 18:36", "holnap 10:00", "december 25. 10:00"),
    ("sk", "5. decembra 2026 o 18:36", "dnes o 18:36", "zajtra o 10:00", "25. decembra o 10:00"),
    ("pl", "5 grudnia 2026, godz. 18:36", "dziś o 18:36", "jutro o 10:00", "25 grudnia o 10:00"),
])
def test_dates_read_without_thinking(locale: str, at: str, today: str, tomorrow: str, later: str) -> None:
    zone = ZoneInfo(TZ)
    now = datetime(2026, 12, 5, 17, 0, tzinfo=zone)
    eta = datetime(2026, 12, 5, 18, 36, tzinfo=zone)
    assert human_datetime(eta, locale, TZ) == at
    assert human_when(eta, locale, TZ, now) == today
    assert human_when(datetime(2026, 12, 6, 10, 0, tzinfo=zone), locale, TZ, now) == tomorrow
    assert human_when(datetime(2026, 12, 25, 10, 0, tzinfo=zone), locale, TZ, now) == later


def test_dates_in_words_follow_the_zone_and_the_locale_however_often_asked() -> None:
    """The words of a date are cached per (local day, locale): one instant reads as its own day in each
    zone, and each English form stays its own, in whatever order they are asked."""
    late = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    for _ in range(2):
        assert human_datetime(late, "en", "Europe/Budapest") == "6 December 2026, 00:30"
        assert human_datetime(late, "en", "UTC") == "5 December 2026, 23:30"
        assert human_datetime(late, "en-US", "UTC") == "December 5, 2026, 11:30 PM"
        assert human_when(late, "hu", "Europe/Budapest", late - timedelta(days=3)) == "december 6. 00:30"


def test_every_template_in_every_locale_renders_without_none_iso_or_us_dates() -> None:
    """Every playbook step's template, in every locale of its audience and in each sample shape (with and
    without ETA and fallbacks, an ETA already passed), plus the voice: nothing a person misreads."""
    loaded = load_config(EXAMPLE_CONFIG)
    catalog = TemplateCatalog(loaded)
    now = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
    checked = 0
    for channel, playbook in every_playbook(loaded):
        for group, step in playbook.all_steps():
            for locale in catalog.locales_for(step.audience):
                for variant in _variants(channel, now, group, playbook):
                    for moment in (now + step.after, now + timedelta(hours=5)):  # later: the ETA has passed
                        ctx = template_context(loaded, variant, playbook, locale, moment, step_id=step.id)
                        rendered = catalog.render(step.template, locale, ctx)
                        where = f"{step.template} [{locale}]"
                        clean(rendered.subject + "\n" + rendered.body, where)
                        if step.audience != "staff":
                            assert variant.reason not in rendered.body, where  # staff words stay with staff
                        checked += 1
            if step.audience != "staff" and group == "open":
                for locale in loaded.config.organisation.locales:
                    for variant in _variants(channel, now, group, playbook):
                        ctx = template_context(loaded, variant, playbook, locale, now)
                        voice = catalog.render("public/voice", locale, ctx).body
                        assert NUMERIC_DATE.search(voice) is None, (locale, voice)
                        clean(voice, f"public/voice [{locale}]")
    assert checked > 300


def test_validate_names_a_cause_missing_a_locale(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    assert text.count("organisation:\n") == 1
    text = text.replace("organisation:\n", "organisation:\n  causes:\n    flood: {en: \"Our office is flooded.\"}\n")
    (tmp_path / "continuity.yaml").write_text(text, encoding="utf-8")
    done = run_cli(tmp_path, "validate")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "organisation: causes: 'flood' has no text in hu, sk, pl" in done.stderr


@pytest.mark.parametrize(("locale", "said"), [
    ("en", "tomorrow from 13:00 to 15:00"), ("hu", "holnap 13:00 és 15:00 között"),
    ("sk", "zajtra od 13:00 do 15:00"), ("pl", "jutro od 13:00 do 15:00"),
])
def test_the_voice_says_a_maintenance_day_once_in_words(locale: str, said: str) -> None:
    from dataclasses import replace

    from continuity.samples import sample_situation
    from continuity.sinks.voice_text import spoken

    loaded = load_config(EXAMPLE_CONFIG)
    now = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
    window = {"maintenance": {"starts_at": (now + timedelta(hours=20)).isoformat(),
                              "ends_at": (now + timedelta(hours=22)).isoformat()}}
    sit = replace(sample_situation("phone", now), id=1, kind="maintenance", data=window)
    text = spoken(TemplateCatalog(loaded).render("public/voice", locale,
                                                 template_context(loaded, sit, None, locale, now)).body)
    assert said in text and NUMERIC_DATE.search(text) is None, text


def test_the_engine_refuses_a_persons_past_eta_for_every_front_end(engine: MakeEngine) -> None:
    """The HTTP API and the console reach the engine directly: the same rule, nothing stored."""
    from continuity.errors import InputError

    eng = engine()
    past = eng.clock.now() - timedelta(minutes=1)
    for source in ("http", "console", "cli"):
        with pytest.raises(InputError, match="is in the past"):
            eng.open("phone", reason="trunk down", eta=past, by="tester", source=source)
    assert eng.store.open_situations() == []
    # A maintenance window or a campaign opened late keeps its planned end: not a person's typing.
    eng.open("phone", kind="maintenance", reason="PBX upgrade", eta=past, by="tester", source="maintenance")


def _at_a_terminal(workdir: Path, args: list[str], answers: list[tuple[str, str]], now: str) -> tuple[int, str]:
    """Run the CLI with a real pseudo-terminal for stdin/stdout/stderr; answer each prompt as it appears."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from tests.conftest import _SCRUBBED_ENV

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update({"CONTINUITY_USER": "tester", "CONTINUITY_NOW": now, "NO_COLOR": "1", "COLUMNS": "200"})
    proc = subprocess.Popen([sys.executable, "-m", "continuity", "--config", str(workdir / "continuity.yaml"),
                             *args], cwd=workdir, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen, pending, deadline = "", list(answers), time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk.decode("utf-8", "replace")
            if pending and pending[0][0] in seen:
                os.write(leader, pending.pop(0)[1].encode() + b"\n")
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=30), seen
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_at_a_terminal_a_passed_time_is_confirmed_and_a_cause_is_asked_for(tmp_path: Path) -> None:
    (tmp_path / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    now = "2026-12-05T14:00:00+00:00"  # 15:00 in Budapest
    code, seen = _at_a_terminal(tmp_path, ["outage", "phone", "--reason", "trunk down", "--eta", "14:30"],
                                [("did you mean tomorrow", "n")], now)
    assert code == 2 and "14:30 has passed today (15:00 now): did you mean tomorrow 2026-12-06 14:30?" in seen
    assert not (tmp_path / "continuity.db").exists()
    code, seen = _at_a_terminal(tmp_path, ["outage", "phone", "--reason", "trunk down", "--eta", "14:30"],
                                [("did you mean tomorrow", "y"), ("What do customers read as the cause?", "power")],
                                now)
    assert code == 0, seen
    assert "ETA: 2026-12-06 14:30" in seen
    autoreply = next(t for n, t in customer_texts(tmp_path / "outbox").items() if "autoreply" in n)
    assert CAUSES["power"]["en"] in autoreply and CAUSES["power"]["hu"] in autoreply


def _restored(outbox: Path) -> list[dict[str, str]]:
    """The messages of the restore notice in the outbox (one file, every locale), or [] when none went out."""
    files = sorted(outbox.glob("*customer-restored*"))
    assert len(files) <= 1, files
    return json.loads(files[0].read_text(encoding="utf-8"))["messages"] if files else []


# (channel, per locale: words the restore notice must carry: the channel working again, its contact, the length)
RESTORED = {
    "phone": {"hu": ("Újra működik a telefonos ügyfélszolgálat", "+36 1 234 5678", "1 óra 25 perc ideig tartott"),
              "en": ("Our phone line", "is working again", "The outage lasted 1 hour 25 minutes."),
              "sk": ("opäť funguje telefonická linka", "+36 1 234 5678", "Dĺžka výpadku: 1 hodina 25 minút."),
              "pl": ("znów działa linia telefoniczna", "+36 1 234 5678", "Czas trwania awarii: 1 godzina 25 minut.")},
    "internet": {"hu": ("ismét a megszokott gyorsasággal válaszolunk", "1 óra 25 perc"),
                 "en": ("back to their usual speed", "The slowdown lasted 1 hour 25 minutes."),
                 "sk": ("odpovedáme opäť tak rýchlo ako zvyčajne", "Dĺžka spomalenia: 1 hodina 25 minút."),
                 "pl": ("znów odpowiadamy tak szybko jak zwykle", "Czas trwania utrudnień: 1 godzina 25 minut.")},
}


@pytest.mark.parametrize("channel", list(RESTORED))
def test_restore_tells_the_customers_who_were_told(tmp_path: Path, channel: str) -> None:
    """`outage` then `restore` through the CLI: customers told of the outage get a short "working again"
    notice in each language, with how long it lasted, and no staff words."""
    (tmp_path / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    opened = run_cli(tmp_path, "outage", channel, "--reason", HU_REASON, "--cause", "provider", "--eta", "2h",
                     now="2026-12-05T10:00:00+00:00")
    assert opened.returncode == 0, opened.stdout + opened.stderr
    # the office uplink's notice waits 15 minutes: `tick` runs it, as cron or the daemon would
    assert run_cli(tmp_path, "tick", now="2026-12-05T10:20:00+00:00").returncode == 0
    assert _restored(tmp_path / "outbox") == []  # nothing said about a restore before it happens
    closed = run_cli(tmp_path, "restore", channel, "--json", now="2026-12-05T11:25:00+00:00")
    assert closed.returncode == 0, closed.stdout + closed.stderr
    ran = {(r["step"], r["state"]) for r in json.loads(closed.stdout)["ran"]}
    assert ("customer-restored", "done") in ran
    messages = _restored(tmp_path / "outbox")
    assert [m["locale"] for m in messages] == ["hu", "en", "sk", "pl"]
    greetings = {"hu": "Kedves Ügyfelünk!", "en": "Dear Customer,", "sk": "Dobrý deň,", "pl": "Szanowni Państwo,"}
    for m in messages:
        text = m["subject"] + "\n" + m["body"]
        assert m["body"].startswith(greetings[m["locale"]]), m
        for words in RESTORED[channel][m["locale"]]:
            assert words in text, (m["locale"], words, text)
        for word in HU_WORDS:
            assert word not in text, (m["locale"], word)
        clean(text, f"customer-restored [{m['locale']}]")
        assert NUMERIC_DATE.search(text) is None, text


def test_restore_says_nothing_to_customers_who_were_never_told(tmp_path: Path) -> None:
    """A channel whose customer notice is switched off in the config: the restore notice stays quiet too."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    old = '    contact: "+36 1 234 5678"\n'
    assert text.count(old) == 1
    text = text.replace(old, old + "    override:\n      customer-notice: {disabled: true}\n")
    (tmp_path / "continuity.yaml").write_text(text, encoding="utf-8")
    assert run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", now="2026-12-05T10:00:00+00:00"
                   ).returncode == 0
    closed = run_cli(tmp_path, "restore", "phone", "--json", now="2026-12-05T10:30:00+00:00")
    assert closed.returncode == 0, closed.stdout + closed.stderr
    assert "customer-restored" not in {r["step"] for r in json.loads(closed.stdout)["ran"]}
    assert _restored(tmp_path / "outbox") == []


def test_the_notice_and_the_autoreply_give_the_cause_and_extra_waits_in_good_grammar(tmp_path: Path) -> None:
    """The customer notice names the prepared cause in each language; "later by" takes the case each
    language needs (hu "2 órával", sk "o 2 hodiny", pl "o 2 godziny")."""
    (tmp_path / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    opened = run_cli(tmp_path, "outage", "phone", "--reason", HU_REASON, "--cause", "power", "--eta", "2h")
    assert opened.returncode == 0, opened.stdout + opened.stderr
    texts = customer_texts(tmp_path / "outbox")
    notice = next(t for n, t in texts.items() if "customer-notice" in n)
    for locale in ("hu", "en", "sk", "pl"):
        assert CAUSES["power"][locale] in notice, locale
    for words in ("akár 2 órával is", "až o 2 hodiny neskôr", "nawet o 2 godziny później", "up to 2 hours longer"):
        assert words in notice, words
    assert "navyše" not in notice and "dodatkowy czas" not in notice
    autoreply = next(t for n, t in texts.items() if "autoreply" in n)
    assert "až o 2 hodiny neskôr" in autoreply and "nawet o 2 godziny później" in autoreply


@pytest.mark.parametrize(("english", "expected"), [(None, "back by 13:00 today"), ("en-GB", "back by 13:00 today"),
                                                   ("en-US", "back by 1:00 PM today")])
def test_english_dates_follow_organisation_english(tmp_path: Path, english: str | None, expected: str) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    if english:
        old = "  timezone: Europe/Budapest"
        assert text.count(old) == 1
        text = text.replace(old, f"  english: {english}\n{old}")
    (tmp_path / "continuity.yaml").write_text(text, encoding="utf-8")
    opened = run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", "--cause", "power", "--eta", "2h",
                     now="2026-12-07T10:00:00+00:00")
    assert opened.returncode == 0, opened.stdout + opened.stderr
    notice = next(t for n, t in customer_texts(tmp_path / "outbox").items() if "customer-notice" in n)
    english_part = notice.partition("Dear Customer")[2].partition("Dobrý deň")[0]
    assert expected in english_part, english_part
    assert "ma 13:00" in notice and "dnes o 13:00" in notice  # the other languages keep their own clock


def test_organisation_english_takes_only_the_two_forms(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace("  timezone: Europe/Budapest",
                                                              "  english: en-AU\n  timezone: Europe/Budapest")
    (tmp_path / "continuity.yaml").write_text(text, encoding="utf-8")
    done = run_cli(tmp_path, "validate")
    assert done.returncode == 2 and "organisation.english" in done.stderr, done.stderr


def test_the_end_of_a_maintenance_window_tells_the_customers_who_were_told(tmp_path: Path) -> None:
    """`maintenance add`, then `tick` through the window: at its end a short "finished" notice, every locale."""
    (tmp_path / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    added = run_cli(tmp_path, "maintenance", "add", "phone", "--start", "2026-12-05T12:00:00+00:00",
                    "--end", "2026-12-05T13:00:00+00:00", "--reason", "PBX upgrade", "--notice", "1h",
                    now="2026-12-05T09:00:00+00:00")
    assert added.returncode == 0, added.stdout + added.stderr
    for at in ("2026-12-05T11:05:00+00:00", "2026-12-05T12:05:00+00:00", "2026-12-05T13:05:00+00:00"):
        done = run_cli(tmp_path, "tick", now=at)
        assert done.returncode == 0, done.stdout + done.stderr
    files = sorted((tmp_path / "outbox").glob("*customer-done*"))
    assert len(files) == 1, sorted(p.name for p in (tmp_path / "outbox").iterdir())
    messages = json.loads(files[0].read_text(encoding="utf-8"))["messages"]
    expected = {"hu": "Befejeztük a tervezett karbantartást: újra működik a telefonos ügyfélszolgálat",
                "en": "The planned maintenance is finished: our phone line",
                "sk": "plánovaná údržba sa skončila: opäť funguje telefonická linka",
                "pl": "planowane prace serwisowe zostały zakończone: znów działa linia telefoniczna"}
    assert [m["locale"] for m in messages] == list(expected)
    for m in messages:
        assert expected[m["locale"]] in m["body"], m
        assert "PBX upgrade" not in m["subject"] + m["body"]
        clean(m["subject"] + "\n" + m["body"], f"maintenance/customer-done [{m['locale']}]")


@pytest.mark.parametrize(("english", "expected"), [("en-GB", "13:00"), ("en-US", "1:00 PM")])
def test_the_status_page_writes_english_times_as_organisation_english_says(tmp_path: Path, english: str,
                                                                           expected: str) -> None:
    from continuity.public.status import status_data
    from continuity.store import open_store

    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        "  timezone: Europe/Budapest", f"  english: {english}\n  timezone: Europe/Budapest")
    (tmp_path / "continuity.yaml").write_text(text, encoding="utf-8")
    now = "2026-12-07T10:00:00+00:00"
    opened = run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", "--cause", "power", "--eta", "2h",
                     now=now)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    loaded = load_config(tmp_path / "continuity.yaml")
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        data = status_data(loaded, store, {}, datetime.fromisoformat(now), "en")
        hu = status_data(loaded, store, {}, datetime.fromisoformat(now), "hu")
    finally:
        store.close()
    shown = json.dumps(data, ensure_ascii=False)
    assert expected in shown and ("PM" in shown) == (english == "en-US"), shown
    assert "13:00" in json.dumps(hu, ensure_ascii=False)  # Hungarian keeps its own clock
