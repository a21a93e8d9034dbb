"""The quorum vote as a table: what several vantages report → the channel's verdict, silence and the
monitoring-degraded news; and the staff-only monitoring situation of a silent vantage, in every language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuity.config.models import Health, ProbeSpec
from continuity.quorum import Quorum, assignments, channel_vantages, needs_quorum, parse_observations

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def health(quorum: int = 2, fail_after: int = 2, recover_after: int = 2) -> Health:
    return Health(probes=[ProbeSpec(type="http", vantages=["central", "office"], url="http://x.test/")],
                  every="1s", quorum=quorum, fail_after=fail_after, recover_after=recover_after)


def feed(q: Quorum, rounds: list[dict[str, str]], start: datetime = T0) -> list[str | None]:
    """One round a second; each round maps vantage → status. Returns the verdict after every round."""
    out = []
    for i, round_ in enumerate(rounds):
        now = start + i * S
        for vantage, status in round_.items():
            q.observe(vantage, status, f"{vantage} says {status}", [], now)  # type: ignore[arg-type]
        out.append(q.verdict(now).status)
    return out


UP2 = {"central": "up", "office": "up"}
OFFICE_DOWN = {"central": "up", "office": "down"}
BOTH_DOWN = {"central": "down", "office": "down"}

CASES = [
    # (name, quorum, rounds, expected verdicts)
    ("healthy", 2, [UP2, UP2], ["up", "up"]),
    ("one vantage down is not a quorum of two", 2, [OFFICE_DOWN] * 4, ["up"] * 4),
    ("both down after each one's fail_after", 2, [BOTH_DOWN] * 3, ["up", "down", "down"]),
    ("one down is enough under quorum one", 1, [OFFICE_DOWN] * 3, ["up", "down", "down"]),
    ("back when fewer than quorum, after recover_after", 2, [BOTH_DOWN, BOTH_DOWN, OFFICE_DOWN, OFFICE_DOWN],
     ["up", "down", "down", "up"]),
    ("a single failure in between restarts the count", 2, [BOTH_DOWN, UP2, BOTH_DOWN, BOTH_DOWN],
     ["up", "up", "up", "down"]),
    ("before both reported there is no verdict", 2, [{"central": "up"}], [None]),
]


@pytest.mark.parametrize(("quorum", "rounds", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_vote(quorum: int, rounds: list[dict[str, str]], expected: list[str | None]) -> None:
    q = Quorum(health(quorum), ["central", "office"], T0)
    assert feed(q, rounds) == expected


def test_a_silent_vantage_counts_neither_way_and_staff_hear_it_once() -> None:
    q = Quorum(health(2), ["central", "office"], T0)
    assert feed(q, [BOTH_DOWN, BOTH_DOWN]) == ["up", "down"]
    later = T0 + 2 * S
    for i in range(8):  # only central reports from here on
        q.observe("central", "down", "x", [], later + i * S)
    end = later + 7 * S
    v = q.verdict(end)
    assert v.silent == ["office"] and v.status is None  # no verdict: the channel keeps its state
    assert q.degraded_news(v) == ["office"]
    assert q.degraded_news(q.verdict(end + S)) is None  # told once
    q.observe("office", "up", "", [], end + 2 * S)
    back = q.verdict(end + 2 * S)
    # back, but still counting the channel down until its own recover_after passes
    assert back.silent == [] and back.status == "down" and back.down == ["central", "office"]
    assert q.degraded_news(back) is None
    # silent again later: news again
    assert q.degraded_news(q.verdict(end + 20 * S)) == ["central", "office"]


def test_silence_is_three_cycles_and_a_grace() -> None:
    q = Quorum(health(1), ["central", "office"], T0)
    q.observe("office", "up", "", [], T0)
    assert q.verdict(T0 + 5 * S).silent == []
    assert q.verdict(T0 + 5 * S + timedelta(milliseconds=1)).silent == ["office"]
    # not heard once since the start: an agent retrying a restarted daemon gets its backoff more
    assert q.verdict(T0 + 10 * S).silent == ["office"]
    assert q.verdict(T0 + 10 * S + timedelta(milliseconds=1)).silent == ["central", "office"]


def test_which_channels_need_a_quorum() -> None:
    local = Health(probes=[ProbeSpec(type="tcp", host="h", port=1)])
    assert channel_vantages(local, "central") == ["central"] and not needs_quorum(local, "central")
    assert needs_quorum(local.model_copy(update={"quorum": 2}), "central")
    assert channel_vantages(health(), "central") == ["central", "office"] and needs_quorum(health(), "central")


@pytest.mark.parametrize(("body", "error"), [
    ([], "body must be a JSON object"),
    ({"vantage": "Office"}, "vantage must be a name"),
    ({"vantage": "office", "observations": {}}, "observations must be a list"),
    ({"vantage": "office", "observations": [{"channel": "fax", "status": "up"}]}, "observations[0].channel"),
    ({"vantage": "office", "observations": [{"channel": "chat", "status": "fine"}]}, "observations[0].status"),
    ({"vantage": "office", "observations": [{"channel": "chat", "status": "up", "reason": 3}]},
     "observations[0].reason"),
    ({"vantage": "office", "observations": [{"channel": "chat", "status": "up", "probes": [1]}]},
     "observations[0].probes"),
])
def test_bad_observations_name_the_field(body: object, error: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_observations(body, ["chat"])
    assert error in str(info.value)


def test_good_observations_parse() -> None:
    [ob] = parse_observations({"vantage": "office", "observations": [
        {"channel": "chat", "status": "down", "reason": "http: 503",
         "probes": [{"probe": "http", "status": "down", "latency_ms": 3.5, "reason": "503"}]}]}, ["chat"])
    assert (ob.vantage, ob.channel, ob.status, ob.results[0]["latency_ms"]) == ("office", "chat", "down", 3.5)


CONFIG = """
organisation: {name: T, default_locale: en, locales: [en], staff_locale: LOCALE}
channels:
  chat:
    health:
      probes:
        - {type: http, url: "http://127.0.0.1:9/?k=${PROBE_KEY}", vantages: [office]}
        - {type: tcp, host: 127.0.0.1, port: 9}
  internet:
    health:
      probes:
        - {type: heartbeat, vantage: office}
daemon: {vantage: central}
"""


def test_an_agent_gets_its_probes_with_references_unresolved(tmp_path: Path) -> None:
    from continuity.config.loader import load_config

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("LOCALE", "en"), encoding="utf-8")
    loaded = load_config(path, {"PROBE_KEY": "s3cret-key-Zq9"})
    office = assignments(loaded, "office")
    assert office["channels"] == {"chat": {"every": 30.0, "combine": "all", "probes": [
        {"type": "http", "url": "http://127.0.0.1:9/?k=${PROBE_KEY}"}]}}
    assert "s3cret" not in str(office)
    central = assignments(loaded, "central")
    assert [p["type"] for p in central["channels"]["chat"]["probes"]] == ["tcp"]
    assert "internet" not in central["channels"]  # heartbeats are heard, not run
    assert office["version"] != central["version"] and office["version"] == assignments(loaded, "office")["version"]


@pytest.mark.parametrize("locale", ["en", "hu", "sk", "pl"])
def test_a_silent_vantage_tells_staff_once_and_its_return_says_restored(tmp_path: Path, locale: str) -> None:
    """The monitoring situation of a silent vantage: one staff message in the staff language however often
    the quorum is lost again (a restart, a second channel), never a customer one, and "restored" on return."""
    import email
    from email import policy

    from continuity.clock import SystemClock
    from continuity.config.loader import load_config
    from continuity.engine import Engine
    from continuity.quorum import monitoring_back, monitoring_lost, silent_vantages
    from continuity.store.sqlite import SqliteStore

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("LOCALE", locale), encoding="utf-8")
    loaded = load_config(path, {"PROBE_KEY": "k"})
    outbox = tmp_path / "outbox"

    def messages(step: str) -> list[tuple[str, str, str]]:
        out = []
        for f in sorted(outbox.glob(f"*-{step}-apply-*.eml")):
            msg = email.message_from_bytes(f.read_bytes(), policy=policy.default)
            out.append((str(msg["To"]), str(msg["Subject"]), msg.get_body().get_content()))  # type: ignore[union-attr]
        return out

    store = SqliteStore(tmp_path / "continuity.db")
    try:
        eng = Engine(loaded, store, SystemClock())
        sid = monitoring_lost(eng, "office", ["chat"])
        assert sid is not None and silent_vantages(store) == {"office"}
        eng.run_due()
        assert monitoring_lost(eng, "office", ["chat", "phone"]) is None  # already told: nothing planned
        eng.run_due()
        sit = store.get_situation(sid)
        assert sit is not None and (sit.kind, sit.channel) == ("monitoring", "vantage:office")
        assert store.find_open("outage", "chat") is None
        assert monitoring_back(eng, "office") == sid and silent_vantages(store) == set()
        assert monitoring_back(eng, "office") is None
        eng.run_due()
    finally:
        store.close()
    [(to, subject, body)] = messages("staff-monitoring-degraded")
    assert to == "staff@outbox.invalid"  # staff only: no customer notice, banner or post
    marker = {"en": "Monitoring degraded: vantage office silent", "hu": "Korlátozott felügyelet: office",
              "sk": "Obmedzené monitorovanie: pozorovací bod office", "pl": "Monitoring ograniczony: punkt obserwacji "
              "office"}[locale]
    assert marker in subject, subject
    assert "office" in body and "chat" in body and "{{" not in body and "continuity check" in body
    [(to, subject, body)] = messages("staff-monitoring-restored")
    assert to == "staff@outbox.invalid" and "office" in subject and "{{" not in body
    assert sorted(p.name.split("-s1-")[1].rsplit("-apply-")[0] for p in outbox.glob("*.eml")) == [
        "staff-monitoring-degraded", "staff-monitoring-restored"]


def test_a_vantage_no_channel_names_any_more_has_its_monitoring_situation_closed(tmp_path: Path) -> None:
    """The config changed while a vantage was silent: the next daemon to lead closes its monitoring situation
    (nothing else ever would), and keeps those of vantages still named."""
    import asyncio
    import logging

    from continuity.clock import SystemClock
    from continuity.config.loader import load_config
    from continuity.daemon.service import Daemon
    from continuity.engine import Engine
    from continuity.quorum import monitoring_lost, silent_vantages
    from continuity.store.sqlite import SqliteStore

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("LOCALE", "en").replace("        - {type: tcp, host: 127.0.0.1, port: 9}\n",
                                                            "        - {type: tcp, host: 127.0.0.1, port: 9}\n"
                                                            "      quorum: 2\n"), encoding="utf-8")
    loaded = load_config(path, {"PROBE_KEY": "k"})
    store = SqliteStore(tmp_path / "continuity.db")
    try:
        eng = Engine(loaded, store, SystemClock())
        assert monitoring_lost(eng, "oldsite", ["chat"]) and monitoring_lost(eng, "office", ["chat"])
        daemon = Daemon(loaded, store, SystemClock(), logging.getLogger("test-monitoring"))
        try:
            asyncio.run(daemon.lead(None))
        finally:
            asyncio.run(daemon.probes.aclose())
        assert silent_vantages(store) == {"office"}  # still a vantage of chat: it stays open
    finally:
        store.close()
    [restored] = list((tmp_path / "outbox").glob("*-staff-monitoring-restored-apply-*.eml"))
    text = restored.read_text(encoding="utf-8")
    assert "Monitoring restored: vantage oldsite" in text and "is no longer a vantage of any channel" in text
